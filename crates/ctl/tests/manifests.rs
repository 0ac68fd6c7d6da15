//! The Kubernetes manifests as each overlay renders them (`kubectl kustomize`), parsed into
//! `k8s-openapi`'s types, and the invariants every environment must keep:
//!
//! * every Deployment has readiness and liveness probes, CPU and memory requests and limits,
//!   a non-root, read-only, unprivileged security context, a ServiceAccount of its own
//!   annotated for IRSA, an autoscaler (an HPA, or a KEDA ScaledObject for the queue
//!   consumers) and a PodDisruptionBudget;
//! * every namespace has a default-deny NetworkPolicy (ingress and egress);
//! * every service is scraped (a ServiceMonitor selects its Service).
//!
//! Needs `kubectl` (it renders kustomize without a cluster); without it the test says so and
//! checks nothing.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::de::DeserializeOwned;
use serde_json::Value;

const OVERLAYS: [&str; 3] = ["dev", "staging", "prod"];

fn render(overlay: &str) -> Option<Vec<Value>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../k8s/overlays")
        .join(overlay);
    let output = match Command::new("kubectl").arg("kustomize").arg(&dir).output() {
        Ok(output) => output,
        Err(e) => {
            eprintln!("kubectl is not available ({e}): the manifests are not checked");
            return None;
        }
    };
    assert!(
        output.status.success(),
        "kubectl kustomize {overlay}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    Some(serde_saphyr::from_multiple::<Value>(&text).unwrap())
}

fn of_kind<T: DeserializeOwned>(objects: &[Value], kind: &str) -> Vec<T> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .map(|o| {
            serde_json::from_value(o.clone())
                .unwrap_or_else(|e| panic!("{kind} {}: {e}", o["metadata"]["name"]))
        })
        .collect()
}

fn name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn labels_match(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn check(overlay: &str, objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let deployments: Vec<Deployment> = of_kind(objects, "Deployment");
    let accounts: BTreeMap<String, ServiceAccount> =
        of_kind::<ServiceAccount>(objects, "ServiceAccount")
            .into_iter()
            .map(|a| (name(&a.metadata), a))
            .collect();
    let hpas: Vec<HorizontalPodAutoscaler> = of_kind(objects, "HorizontalPodAutoscaler");
    let pdbs: Vec<PodDisruptionBudget> = of_kind(objects, "PodDisruptionBudget");
    let services: Vec<Service> = of_kind(objects, "Service");
    let scaled: BTreeSet<String> = hpas
        .iter()
        .filter_map(|h| h.spec.as_ref())
        .filter(|s| s.scale_target_ref.kind == "Deployment")
        .map(|s| s.scale_target_ref.name.clone())
        .chain(
            objects
                .iter()
                .filter(|o| o["kind"] == "ScaledObject")
                .filter_map(|o| {
                    o["spec"]["scaleTargetRef"]["name"]
                        .as_str()
                        .map(str::to_owned)
                }),
        )
        .collect();
    let monitored: Vec<BTreeMap<String, String>> = objects
        .iter()
        .filter(|o| o["kind"] == "ServiceMonitor")
        .map(|o| serde_json::from_value(o["spec"]["selector"]["matchLabels"].clone()).unwrap())
        .collect();
    assert!(
        deployments.len() >= 5,
        "{overlay}: {} deployments",
        deployments.len()
    );

    let mut accounts_used = BTreeMap::new();
    for deployment in &deployments {
        let d = name(&deployment.metadata);
        let mut problem =
            |what: String| problems.push(format!("{overlay}: deployment/{d}: {what}"));
        let Some(template) = deployment.spec.as_ref().map(|s| &s.template) else {
            problem("no spec".into());
            continue;
        };
        let pod_labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let Some(pod) = template.spec.as_ref() else {
            problem("no pod spec".into());
            continue;
        };
        let pod_non_root = pod
            .security_context
            .as_ref()
            .and_then(|s| s.run_as_non_root)
            .unwrap_or(false);
        for container in &pod.containers {
            let c = &container.name;
            if container.readiness_probe.is_none() || container.liveness_probe.is_none() {
                problem(format!("container {c} lacks a readiness or liveness probe"));
            }
            let resources = container.resources.as_ref();
            for (which, set) in [
                ("requests", resources.and_then(|r| r.requests.as_ref())),
                ("limits", resources.and_then(|r| r.limits.as_ref())),
            ] {
                let has = |k: &str| set.is_some_and(|m| m.contains_key(k));
                if !(has("cpu") || which == "limits") || !has("memory") {
                    problem(format!(
                        "container {c} lacks memory (and, for requests, cpu) {which}"
                    ));
                }
            }
            let security = container.security_context.as_ref();
            let non_root = security
                .and_then(|s| s.run_as_non_root)
                .unwrap_or(pod_non_root);
            if !non_root {
                problem(format!("container {c} may run as root"));
            }
            if security.and_then(|s| s.read_only_root_filesystem) != Some(true) {
                problem(format!("container {c} has a writable root filesystem"));
            }
            if security.and_then(|s| s.allow_privilege_escalation) != Some(false) {
                problem(format!("container {c} may escalate privileges"));
            }
        }
        match pod.service_account_name.as_deref() {
            None | Some("default") => problem("runs as the default ServiceAccount".into()),
            Some(account) => {
                if let Some(other) = accounts_used.insert(account.to_owned(), d.clone()) {
                    problem(format!("shares ServiceAccount {account} with {other}"));
                }
                let role = accounts
                    .get(account)
                    .and_then(|a| a.metadata.annotations.as_ref())
                    .and_then(|a| a.get("eks.amazonaws.com/role-arn"));
                if !role.is_some_and(|arn| arn.starts_with("arn:aws:iam::")) {
                    problem(format!(
                        "ServiceAccount {account} is missing or has no IRSA role"
                    ));
                }
            }
        }
        if !scaled.contains(&d) {
            problem("no HPA or ScaledObject".into());
        }
        let disrupted = pdbs.iter().any(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .and_then(|s| s.match_labels.as_ref())
                .is_some_and(|sel| labels_match(sel, &pod_labels))
        });
        if !disrupted {
            problem("no PodDisruptionBudget".into());
        }
        let exposed_and_monitored = services.iter().any(|s| {
            let selects = s
                .spec
                .as_ref()
                .and_then(|spec| spec.selector.as_ref())
                .is_some_and(|sel| labels_match(sel, &pod_labels));
            let labels = s.metadata.labels.clone().unwrap_or_default();
            selects && monitored.iter().any(|m| labels_match(m, &labels))
        });
        if !exposed_and_monitored {
            problem("no Service that a ServiceMonitor selects".into());
        }
    }

    let policies: Vec<NetworkPolicy> = of_kind(objects, "NetworkPolicy");
    for namespace in of_kind::<Namespace>(objects, "Namespace") {
        let ns = name(&namespace.metadata);
        let default_deny = policies.iter().any(|p| {
            let Some(spec) = p.spec.as_ref() else {
                return false;
            };
            let everything = spec.pod_selector.as_ref().is_none_or(|s| {
                s.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
                    && s.match_expressions.as_ref().is_none_or(Vec::is_empty)
            });
            let types = spec.policy_types.clone().unwrap_or_default();
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && everything
                && types.iter().any(|t| t == "Ingress")
                && types.iter().any(|t| t == "Egress")
                && spec.ingress.as_ref().is_none_or(Vec::is_empty)
                && spec.egress.as_ref().is_none_or(Vec::is_empty)
        });
        if !default_deny {
            problems.push(format!(
                "{overlay}: namespace {ns} has no default-deny NetworkPolicy"
            ));
        }
    }
    problems
}

#[test]
fn every_overlay_keeps_the_deployment_invariants() {
    let mut problems = Vec::new();
    for overlay in OVERLAYS {
        let Some(objects) = render(overlay) else {
            return;
        };
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for o in &objects {
            *kinds
                .entry(o["kind"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        println!("{overlay}: {} objects {kinds:?}", objects.len());
        problems.extend(check(overlay, &objects));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checks can fail: a Deployment stripped of its probes and its ServiceAccount, and a
/// namespace without its default-deny policy, are all reported.
#[test]
fn the_checks_catch_what_they_look_for() {
    let Some(mut objects) = render("dev") else {
        return;
    };
    for o in &mut objects {
        if o["kind"] == "Deployment" && o["metadata"]["name"] == "rag-router" {
            let container = &mut o["spec"]["template"]["spec"]["containers"][0];
            container.as_object_mut().unwrap().remove("readinessProbe");
            o["spec"]["template"]["spec"]["serviceAccountName"] = "default".into();
        }
    }
    objects.retain(|o| {
        !(o["kind"] == "NetworkPolicy"
            && o["spec"]["podSelector"]
                .as_object()
                .is_some_and(|s| s.is_empty() || s.get("matchLabels").is_none()))
    });
    let problems = check("dev", &objects).join("\n");
    assert!(
        problems.contains("deployment/rag-router: container"),
        "{problems}"
    );
    assert!(problems.contains("default ServiceAccount"), "{problems}");
    assert!(
        problems.contains("no default-deny NetworkPolicy"),
        "{problems}"
    );
}
