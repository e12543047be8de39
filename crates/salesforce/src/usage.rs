//! API usage as Salesforce reports it in `Sforce-Limit-Info`, and the budget we keep within.

use parking_lot::Mutex;

/// `api-usage=<used>/<max>` from the latest response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
}

impl ApiUsage {
    /// Parses a `Sforce-Limit-Info` value such as `api-usage=18/5000` or
    /// `api-usage=25/5000; per-app-api-usage=17/250(appName=x)`.
    pub fn parse(header: &str) -> Option<ApiUsage> {
        let part = header.split(';').map(str::trim).find_map(|p| p.strip_prefix("api-usage="))?;
        let (used, max) = part.split_once('/')?;
        Some(ApiUsage { used: used.trim().parse().ok()?, max: max.trim().parse().ok()? })
    }
}

/// The share of the daily allocation a run may use before it stops cleanly.
#[derive(Debug)]
pub struct ApiBudget {
    /// Percent of `max` (1–100).
    percent: u32,
    last: Mutex<Option<ApiUsage>>,
}

impl ApiBudget {
    pub fn new(percent: u32) -> ApiBudget {
        ApiBudget { percent: percent.clamp(1, 100), last: Mutex::new(None) }
    }

    pub fn percent(&self) -> u32 {
        self.percent
    }

    pub fn record(&self, usage: ApiUsage) {
        *self.last.lock() = Some(usage);
    }

    pub fn last(&self) -> Option<ApiUsage> {
        *self.last.lock()
    }

    /// True when the last reported usage has reached the budget.
    pub fn exhausted(&self) -> Option<ApiUsage> {
        let last = (*self.last.lock())?;
        let limit = last.max.saturating_mul(u64::from(self.percent)) / 100;
        (last.used >= limit).then_some(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_header_forms() {
        assert_eq!(ApiUsage::parse("api-usage=18/5000"), Some(ApiUsage { used: 18, max: 5000 }));
        assert_eq!(ApiUsage::parse("api-usage=10018/100000; api-bursts=1/750"), Some(ApiUsage { used: 10018, max: 100000 }));
        assert_eq!(
            ApiUsage::parse("api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)"),
            Some(ApiUsage { used: 25, max: 5000 })
        );
        assert_eq!(ApiUsage::parse("nonsense"), None);
    }

    #[test]
    fn budget_trips_at_its_share() {
        let b = ApiBudget::new(80);
        assert!(b.exhausted().is_none());
        b.record(ApiUsage { used: 79, max: 100 });
        assert!(b.exhausted().is_none());
        b.record(ApiUsage { used: 80, max: 100 });
        assert_eq!(b.exhausted(), Some(ApiUsage { used: 80, max: 100 }));
    }
}
