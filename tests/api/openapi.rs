//! The OpenAPI document tells the truth: the committed copy is what the code generates, the
//! served one is the same, its examples are what the gateway answers, and Swagger UI is served
//! from the binary.

use serde_json::Value;
use wemeet_gateway::simulator::demo::SEED_MEETING;

use crate::helpers::start_gateway;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[test]
fn the_committed_spec_is_what_the_code_generates() {
    let generated = wemeet_gateway::api::openapi_json();
    assert!(
        COMMITTED == generated,
        "openapi/openapi.json differs from the document the code generates; \
         regenerate it with `cargo run --quiet -- openapi > openapi/openapi.json` and review the diff"
    );
}

#[tokio::test]
async fn the_served_spec_is_the_committed_one_and_needs_no_key() {
    let gateway = start_gateway().await;
    let response = gateway.get_without_key("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, serde_json::from_str::<Value>(COMMITTED).unwrap());
    assert_eq!(served["openapi"], "3.1.0");
}

#[tokio::test]
async fn the_documented_examples_are_what_the_gateway_answers() {
    let gateway = start_gateway().await;
    let spec: Value = serde_json::from_str(COMMITTED).unwrap();
    for view in ["participants", "attendance"] {
        let content = &spec["paths"][format!("/meetings/{{meeting_id}}/{view}")]["get"]["responses"]
            ["200"]["content"];
        let example = &content["application/json"]["example"];
        assert_eq!(example["meeting_id"], SEED_MEETING);
        let response = gateway
            .get(&format!("/meetings/{SEED_MEETING}/{view}"))
            .await;
        assert_eq!(response.status(), 200);
        let mut answered: Value = response.json().await.unwrap();
        if view == "attendance" {
            // When the list was fetched: now, not when the example was written.
            assert!(answered["as_of"].as_i64().unwrap() > example["as_of"].as_i64().unwrap());
            answered["as_of"] = example["as_of"].clone();
        }
        assert_eq!(&answered, example, "{view}");
        let csv = gateway
            .get(&format!("/meetings/{SEED_MEETING}/{view}?format=csv"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(content["text/csv"]["example"], csv, "{view} as CSV");
    }
}

/// Every status a route can answer is documented, and every documented problem is
/// problem+json: checked here for the statuses these tests can provoke without faults.
#[tokio::test]
async fn answered_statuses_are_documented() {
    let gateway = start_gateway().await;
    let spec: Value = serde_json::from_str(COMMITTED).unwrap();
    let documented = |path: &str, method: &str, status: u16| {
        let response = &spec["paths"][path][method]["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path}: {status} undocumented"
        );
        if status >= 400 {
            assert!(
                response["content"]["application/problem+json"].is_object(),
                "{method} {path}: {status} is not documented as problem+json"
            );
        }
    };
    let list = "/meetings/{meeting_id}/participants";
    let cases = [
        (format!("/meetings/{SEED_MEETING}/participants"), 200),
        ("/meetings/1/participants?start_time=x".to_owned(), 400),
        ("/meetings/999/participants".to_owned(), 404),
        (
            format!("/meetings/{SEED_MEETING}/participants?userid=guest1"),
            403,
        ),
    ];
    for (path, status) in cases {
        assert_eq!(gateway.get(&path).await.status(), status, "{path}");
        documented(list, "get", status);
    }
    let anonymous = gateway.get_without_key("/meetings/1/participants").await;
    assert_eq!(anonymous.status(), 401);
    documented(list, "get", 401);
    let first = gateway
        .get(&format!("/meetings/{SEED_MEETING}/participants"))
        .await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = gateway
        .get_with(
            &format!("/meetings/{SEED_MEETING}/participants"),
            "if-none-match",
            &etag,
        )
        .await;
    assert_eq!(again.status(), 304);
    documented(list, "get", 304);
    let dropped = gateway
        .delete(&format!("/meetings/{SEED_MEETING}/participants/cache"))
        .await;
    assert_eq!(dropped.status(), 204);
    documented("/meetings/{meeting_id}/participants/cache", "delete", 204);
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_and_loads_the_spec() {
    let gateway = start_gateway().await;
    let page = gateway.get_without_key("/swagger-ui/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui-bundle.js"));
    let bundle = gateway
        .get_without_key("/swagger-ui/swagger-ui-bundle.js")
        .await;
    assert_eq!(bundle.status(), 200);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);
    let initializer = gateway
        .get_without_key("/swagger-ui/swagger-initializer.js")
        .await;
    let initializer = initializer.text().await.unwrap();
    assert!(
        initializer.contains(r#""url": "/openapi.json""#),
        "{initializer}"
    );
    // Off by default, Swagger UI would send the spec's address to validator.swagger.io.
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "{initializer}"
    );
}
