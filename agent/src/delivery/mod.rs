//! Delivery: from facts to a verified receipt. The outbox signs and chains reports into the
//! durable spool; the shipper sends them, oldest first, over the pinned HTTPS client and keeps
//! each until the server's signed receipt for it verifies.

pub mod durable;
pub mod outbox;
pub mod ship;
pub mod shipper;
pub mod spool;
pub mod tls;
