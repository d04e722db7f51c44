//! `seckill cluster`: the whole topology on this machine (the database, by default a private primary + replica
//! pair; a Redis; N `seckill serve` instances reading through the replica; and the nginx load balancer in
//! front), what runs where, until Ctrl-C or SIGTERM; then everything is stopped and removed.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use seckill::local::cluster::{Cluster, ClusterDatabase, ClusterOptions, ClusterRedis, MAX_INSTANCES};

use super::serve::{InstanceArgs, listen_address, shutdown_signal};
use super::{DatabaseTarget, Failure};

#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    /// How many `seckill serve` instances to start behind the balancer.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=MAX_INSTANCES as i64))]
    instances: u16,
    /// Address the load balancer listens on (the instances take free loopback ports).
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = listen_address)]
    listen: SocketAddr,
    #[command(flatten)]
    instance: InstanceArgs,
}

pub(crate) async fn run(target: &DatabaseTarget, args: ClusterArgs) -> Result<(), Failure> {
    // From the start: a SIGTERM while the cluster starts, or right after it says what runs where, stops it in
    // order rather than ending this process at once.
    let stop = shutdown_signal();
    // Checked here, where it can be said in one line, rather than by each instance in its log.
    args.instance.signing.signer()?;
    let binary = std::env::current_exe().map_err(|e| Failure::new(format!("cannot find the seckill binary: {e}")))?;
    let database = match target.url() {
        Some(url) => {
            ClusterDatabase::Given { primary_url: url.to_string(), replica_urls: target.replica_urls().to_vec() }
        }
        None if !target.replica_urls().is_empty() => {
            return Err(Failure::new("--replica-url needs the primary's URL too")
                .hint("pass --database-url mysql://user:password@host:port/database or set DATABASE_URL"));
        }
        None => ClusterDatabase::PrivatePair,
    };
    let redis = match args.instance.redis_url.filter(|url| !url.trim().is_empty()) {
        Some(url) => ClusterRedis::Url(url),
        None => ClusterRedis::Private,
    };
    let mut options = ClusterOptions::new(seckill::app::served(binary))
        .instances(usize::from(args.instances))
        .balancer_listen(args.listen)
        .database(database)
        .redis(redis);
    options.serve_args = args.instance.limits.serve_args();
    options.instance_env = args.instance.signing.environment();
    eprintln!("seckill: starting {} instances behind nginx ...", args.instances);
    let cluster = Cluster::start(options).await?;
    outln!("{}", cluster.describe());
    eprintln!("seckill: serving {}/seckill/list through the balancer (Ctrl-C to stop)", cluster.balancer_url());
    let all_ended = tokio::select! {
        () = stop => false,
        () = watch_instances(&cluster) => true,
    };
    eprintln!("seckill: stopping the cluster");
    cluster.stop().await?;
    eprintln!("seckill: stopped");
    if all_ended {
        return Err(Failure::new("every app instance ended; their logs said why (removed with the cluster)"));
    }
    Ok(())
}

/// Says once when an instance ends on its own (the balancer routes around it); returns when none is left.
async fn watch_instances(cluster: &Cluster) {
    let mut reported = vec![false; cluster.instances().len()];
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        for (instance, reported) in cluster.instances().iter().zip(reported.iter_mut()) {
            if let Some(status) = instance.exit_status().filter(|_| !*reported) {
                *reported = true;
                eprintln!(
                    "seckill: instance {} (pid {}) ended ({status}); see {}",
                    instance.number(),
                    instance.pid(),
                    instance.log_path().display()
                );
            }
        }
        if reported.iter().all(|reported| *reported) {
            return;
        }
    }
}
