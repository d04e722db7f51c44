//! Redis faults against the HTTP side: a stopped or restarted Redis never holds up a sale or a page.
