//! The message the points exchange produces: one `warehouse.shipment` per exchange, written by
//! `exchange_credit_batch` into the outbox in the same transaction as the exchange, and consumed by the
//! warehouse ([`super::warehouse`]). The procedure writes the topic as a literal (SQL cannot read this
//! constant); a test below holds the two ends together.

use serde::Deserialize;

/// The topic the points exchange writes shipment requests to.
pub const SHIPMENT_TOPIC: &str = "warehouse.shipment";

/// A message's payload: what to ship, and for which business fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ShipmentRequest {
    /// 1 purchase, 2 exchange.
    #[serde(rename = "type")]
    pub kind: u8,
    pub credit_exchange_id: i64,
    pub product_id: i64,
    pub user_id: i64,
}

impl ShipmentRequest {
    /// Reads a message's payload, or says why it is nothing to ship.
    ///
    /// # Errors
    /// A one-line reason: the payload is not the contract's JSON, of an unknown type, or names no exchange or
    /// product.
    pub fn parse(payload: &str) -> Result<Self, String> {
        let request: ShipmentRequest =
            serde_json::from_str(payload).map_err(|error| format!("payload is not a shipment request: {error}"))?;
        if !matches!(request.kind, 1 | 2) {
            return Err(format!("unknown shipment type {}", request.kind));
        }
        if request.credit_exchange_id <= 0 || request.product_id <= 0 {
            return Err("shipment request without an exchange or a product".into());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::SqlSource;

    #[test]
    fn the_exchange_procedure_writes_this_topic() {
        let source = SqlSource::embedded().unwrap();
        let procedure = source.procedures.iter().find(|p| p.name == "exchange_credit_batch").unwrap();
        assert!(procedure.statements.iter().any(|sql| sql.contains(&format!("'{SHIPMENT_TOPIC}'"))));
    }

    #[test]
    fn payloads_that_are_nothing_to_ship_are_refused_with_a_reason() {
        let good = r#"{"type": 2, "credit_exchange_id": 5, "product_id": 3, "user_id": 9}"#;
        assert_eq!(ShipmentRequest::parse(good).unwrap().credit_exchange_id, 5);
        for bad in ["", "{}", r#"{"type": 3, "credit_exchange_id": 5, "product_id": 3, "user_id": 9}"#] {
            assert!(ShipmentRequest::parse(bad).is_err(), "{bad}");
        }
    }
}
