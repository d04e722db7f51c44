//! The books of the points exchange: what callers were told must be what the database holds, and every fact
//! must agree with every other. Checked by the tests after every run; cheap enough for an operator's check.
//!
//! - per gift: units taken (`stocked - stock`) = its exchanges;
//! - per user: points granted = balance + points spent, points spent by the ledger = points paid by the
//!   exchanges, and the last ledger row's balance is the balance;
//! - every exchange has exactly one shipment message, with its own payload, and its first answer recorded;
//!   every exchange message belongs to an exchange.
//!
//! The sums run in the database; only the gifts and at most [`UNBALANCED_USERS_SHOWN`] users that do not
//! balance come back, so the report stays small however many users there are.

use mysql_async::Pool;

use crate::database::acquire;
use crate::database::error::DatabaseError;
use crate::database::rows::{exec_all, exec_first};

/// The most users that do not balance a report lists.
pub const UNBALANCED_USERS_SHOWN: u32 = 100;

/// One gift's books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GiftBooks {
    pub gift_id: i64,
    /// Units ever put in stock.
    pub stocked: i64,
    /// Units left.
    pub stock: i64,
    /// `credit_exchange` rows for the gift.
    pub exchanges: i64,
}

impl GiftBooks {
    /// Units taken = exchanges, and stock never negative.
    pub fn balances(&self) -> bool {
        self.stock >= 0 && self.stocked - self.stock == self.exchanges
    }
}

/// One user's books.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserBooks {
    pub user_id: i64,
    pub balance: i64,
    /// Points granted, by the ledger.
    pub granted: i64,
    /// Points spent, by the ledger.
    pub spent: i64,
    /// Points paid, by the `credit_exchange` rows.
    pub exchanged: i64,
    /// The balance after the user's last ledger row (`None`: no ledger row).
    pub last_balance_after: Option<i64>,
}

impl UserBooks {
    /// Granted = balance + spent, spent = exchanged, the ledger ends at the balance, never negative.
    pub fn balances(&self) -> bool {
        self.balance >= 0
            && self.granted - self.spent == self.balance
            && self.spent == self.exchanged
            && self.last_balance_after.unwrap_or(0) == self.balance
    }
}

/// The books of the whole exchange, as the database holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Books {
    /// Every gift, in id order.
    pub gifts: Vec<GiftBooks>,
    /// Users with a balance.
    pub users: i64,
    /// Users whose books do not balance (at most 20).
    pub unbalanced_users: Vec<UserBooks>,
    /// The sum of all balances.
    pub total_balance: i64,
    /// All points ever granted, by the ledger.
    pub total_granted: i64,
    /// All points paid for gifts, by the `credit_exchange` rows.
    pub total_exchanged: i64,
    /// `credit_exchange` rows.
    pub exchanges: i64,
    /// Exchanges with no shipment message.
    pub exchanges_without_message: i64,
    /// Exchange messages (payload type 2) whose exchange does not exist.
    pub messages_without_exchange: i64,
    /// Exchanges whose message's payload does not describe them.
    pub messages_with_wrong_payload: i64,
    /// Exchanges whose first answer is not recorded as this exchange in `exchange_request`.
    pub exchanges_not_recorded: i64,
}

impl Books {
    /// Reads the books.
    ///
    /// # Errors
    /// The database's error.
    pub async fn read(pool: &Pool) -> Result<Books, DatabaseError> {
        let mut conn = acquire(pool).await?;
        let gifts: Vec<(i64, i64, i64, i64)> = exec_all(
            &mut conn,
            "SELECT g.gift_id, g.stocked, g.stock, COUNT(ce.id) FROM exchange_gift g \
               LEFT JOIN credit_exchange ce ON ce.product_id = g.gift_id \
              GROUP BY g.gift_id, g.stocked, g.stock ORDER BY g.gift_id",
            (),
            "the gifts' books",
        )
        .await?;
        let gifts = gifts
            .into_iter()
            .map(|(gift_id, stocked, stock, exchanges)| GiftBooks { gift_id, stocked, stock, exchanges })
            .collect();

        let per_user = "SELECT c.user_id, c.credit AS balance, \
                               CAST(COALESCE(l.granted, 0) AS SIGNED) AS granted, \
                               CAST(COALESCE(l.spent, 0) AS SIGNED) AS spent, \
                               CAST(COALESCE(x.exchanged, 0) AS SIGNED) AS exchanged, \
                               last.balance_after AS last_balance_after \
                          FROM credit c \
                          LEFT JOIN (SELECT user_id, \
                                            SUM(CASE WHEN reason = 'grant' THEN delta ELSE 0 END) AS granted, \
                                            -SUM(CASE WHEN reason = 'exchange' THEN delta ELSE 0 END) AS spent, \
                                            MAX(id) AS last_id \
                                       FROM credit_ledger GROUP BY user_id) l ON l.user_id = c.user_id \
                          LEFT JOIN (SELECT user_id, SUM(exchanged_credit) AS exchanged \
                                       FROM credit_exchange GROUP BY user_id) x ON x.user_id = c.user_id \
                          LEFT JOIN credit_ledger last ON last.id = l.last_id";
        let unbalanced: Vec<(i64, i64, i64, i64, i64, Option<i64>)> = exec_all(
            &mut conn,
            &format!(
                "SELECT * FROM ({per_user}) u \
                  WHERE NOT (u.balance >= 0 AND u.granted - u.spent = u.balance AND u.spent = u.exchanged \
                             AND COALESCE(u.last_balance_after, 0) = u.balance) \
                  ORDER BY u.user_id LIMIT {UNBALANCED_USERS_SHOWN}"
            ),
            (),
            "the users' books",
        )
        .await?;
        let unbalanced_users = unbalanced
            .into_iter()
            .map(|(user_id, balance, granted, spent, exchanged, last_balance_after)| UserBooks {
                user_id,
                balance,
                granted,
                spent,
                exchanged,
                last_balance_after,
            })
            .collect();

        let totals: Option<(i64, i64, i64, i64, i64)> = exec_first(
            &mut conn,
            "SELECT (SELECT COUNT(*) FROM credit), \
                    (SELECT CAST(COALESCE(SUM(credit), 0) AS SIGNED) FROM credit), \
                    (SELECT CAST(COALESCE(SUM(delta), 0) AS SIGNED) FROM credit_ledger WHERE reason = 'grant'), \
                    (SELECT CAST(COALESCE(SUM(exchanged_credit), 0) AS SIGNED) FROM credit_exchange), \
                    (SELECT COUNT(*) FROM credit_exchange)",
            (),
            "the totals",
        )
        .await?;
        let (users, total_balance, total_granted, total_exchanged, exchanges) =
            totals.ok_or_else(|| DatabaseError::UnexpectedAnswer("the totals: no row".into()))?;

        // The message of an exchange is found by its unique (topic, business_key); CONCAT, not CAST, so the
        // comparison takes the column's collation whatever the session's is.
        let messages: Option<(i64, i64, i64, i64)> = exec_first(
            &mut conn,
            "SELECT \
               (SELECT COUNT(*) FROM credit_exchange ce \
                  LEFT JOIN message_outbox mo ON mo.topic = 'warehouse.shipment' AND mo.business_key = CONCAT(ce.id) \
                 WHERE mo.message_id IS NULL), \
               (SELECT COUNT(*) FROM message_outbox mo \
                  LEFT JOIN credit_exchange ce ON ce.id = CAST(mo.business_key AS SIGNED) \
                 WHERE mo.topic = 'warehouse.shipment' AND ce.id IS NULL \
                   AND CASE WHEN JSON_VALID(mo.payload) THEN JSON_EXTRACT(mo.payload, '$.type') = 2 END), \
               (SELECT COUNT(*) FROM credit_exchange ce \
                  JOIN message_outbox mo ON mo.topic = 'warehouse.shipment' AND mo.business_key = CONCAT(ce.id) \
                 WHERE NOT COALESCE(CASE WHEN JSON_VALID(mo.payload) THEN \
                             JSON_EXTRACT(mo.payload, '$.type') = 2 \
                             AND JSON_EXTRACT(mo.payload, '$.credit_exchange_id') = ce.id \
                             AND JSON_EXTRACT(mo.payload, '$.product_id') = ce.product_id \
                             AND JSON_EXTRACT(mo.payload, '$.user_id') = ce.user_id \
                             AND JSON_EXTRACT(mo.payload, '$.exchanged_credit') = ce.exchanged_credit END, FALSE)), \
               (SELECT COUNT(*) FROM credit_exchange ce \
                  LEFT JOIN exchange_request r \
                    ON r.user_id = ce.user_id AND r.request_id = ce.request_id \
                   AND r.outcome = 'exchanged' AND r.exchange_id = ce.id \
                 WHERE r.user_id IS NULL)",
            (),
            "the messages' books",
        )
        .await?;
        let (exchanges_without_message, messages_without_exchange, messages_with_wrong_payload, exchanges_not_recorded) =
            messages.ok_or_else(|| DatabaseError::UnexpectedAnswer("the messages' books: no row".into()))?;

        Ok(Books {
            gifts,
            users,
            unbalanced_users,
            total_balance,
            total_granted,
            total_exchanged,
            exchanges,
            exchanges_without_message,
            messages_without_exchange,
            messages_with_wrong_payload,
            exchanges_not_recorded,
        })
    }

    /// One gift's books, if the gift exists.
    pub fn gift(&self, gift_id: i64) -> Option<&GiftBooks> {
        self.gifts.iter().find(|gift| gift.gift_id == gift_id)
    }

    /// Whether everything balances. `Err` lists what does not.
    ///
    /// # Errors
    /// A description of every imbalance found.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for gift in self.gifts.iter().filter(|gift| !gift.balances()) {
            problems.push(format!(
                "gift {}: stock {} -> {} but {} exchanges",
                gift.gift_id, gift.stocked, gift.stock, gift.exchanges
            ));
        }
        for user in &self.unbalanced_users {
            problems.push(format!(
                "user {}: balance {}, granted {}, spent {} by the ledger, {} by the exchanges, ledger ends at {:?}",
                user.user_id, user.balance, user.granted, user.spent, user.exchanged, user.last_balance_after
            ));
        }
        if self.total_granted != self.total_balance + self.total_exchanged {
            problems.push(format!(
                "{} points granted, but {} in balances and {} exchanged",
                self.total_granted, self.total_balance, self.total_exchanged
            ));
        }
        let counts = [
            (self.exchanges_without_message, "exchanges without a shipment message"),
            (self.messages_without_exchange, "exchange messages without an exchange"),
            (self.messages_with_wrong_payload, "exchange messages whose payload does not match their exchange"),
            (self.exchanges_not_recorded, "exchanges not recorded as their request's first answer"),
        ];
        for (count, what) in counts {
            if count != 0 {
                problems.push(format!("{count} {what}"));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
    }
}
