//! Request-level faults over real HTTP: 500, 503, concurrent-limit 403, dropped connections,
//! latency — deterministic by seed and switchable at run time.

use crate::common::TestOrg;
use tidemark_sfsim::faults::FaultConfig;

async fn outcomes(org: &TestOrg, n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let outcome = match org.get("/limits").send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(_) if status == 200 => "ok".to_owned(),
                    Ok(body) => {
                        let v: serde_json::Value = serde_json::from_slice(&body).expect("error bodies are JSON");
                        format!("{status} {}", v[0]["errorCode"].as_str().unwrap())
                    }
                    Err(_) => "dropped".to_owned(),
                }
            }
            Err(_) => "dropped".to_owned(),
        };
        out.push(outcome);
    }
    out
}

#[tokio::test]
async fn each_fault_kind_appears_with_salesforce_shapes_and_repeats_by_seed() {
    let org = TestOrg::start().await;
    let config = FaultConfig {
        http_500_rate: 0.15,
        http_503_rate: 0.15,
        concurrent_limit_rate: 0.15,
        drop_connection_rate: 0.15,
        ..Default::default()
    };
    org.sim.state.faults.set(config.clone(), 11);
    let first = outcomes(&org, 120).await;
    for kind in ["ok", "500 UNKNOWN_EXCEPTION", "503 SERVER_UNAVAILABLE", "403 REQUEST_LIMIT_EXCEEDED", "dropped"] {
        assert!(first.iter().any(|o| o == kind), "{kind} never happened in {first:?}");
    }
    org.sim.state.faults.set(config, 11);
    assert_eq!(outcomes(&org, 120).await, first, "same seed, same faults");

    org.sim.state.faults.set(FaultConfig::default(), 11);
    assert!(outcomes(&org, 20).await.iter().all(|o| o == "ok"), "faults switch off at run time");
}

#[tokio::test]
async fn latency_is_added_to_every_response() {
    let org = TestOrg::start().await;
    org.sim.state.faults.set(FaultConfig { latency_ms: 120, ..Default::default() }, 1);
    let started = std::time::Instant::now();
    assert_eq!(outcomes(&org, 2).await, vec!["ok", "ok"]);
    assert!(started.elapsed() >= std::time::Duration::from_millis(240));
}
