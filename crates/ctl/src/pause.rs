//! `ragctl pause` and `ragctl resume`: scale a namespace's services to zero and back, for a
//! cluster that costs nothing while nobody uses it (the data stays: bucket, queues, Qdrant's
//! volume; see `terraform/README.md` for pausing the compute layer itself).
//!
//! Pausing acts on the Deployments labelled `app.kubernetes.io/part-of=llmops-rag-pipeline`:
//! each one's replica count is remembered in an annotation, then set to 0 (an HPA does not
//! scale a Deployment that has zero replicas). KEDA ScaledObjects of the same label are paused
//! first (`autoscaling.keda.sh/paused-replicas: "0"`), or a queue with messages would wake
//! them. Resuming restores the remembered counts and unpauses KEDA. Both are idempotent: a
//! second pause keeps the counts the first one remembered.
//!
//! The Kubernetes API is reached through `kube` with the usual configuration (the
//! `KUBECONFIG` file or the in-cluster service account).

use clap::Args;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

/// The label every object of the deployment carries.
const SELECTOR: &str = "app.kubernetes.io/part-of=llmops-rag-pipeline";
/// Where a paused Deployment keeps the replica count to resume with.
pub const PAUSED_REPLICAS: &str = "rag.llmops.dev/paused-replicas";
/// KEDA's own pause annotation.
const KEDA_PAUSED: &str = "autoscaling.keda.sh/paused-replicas";

#[derive(Args)]
pub struct PauseArgs {
    /// The namespace (default: the kubeconfig context's).
    #[arg(long)]
    namespace: Option<String>,
}

/// What changed, for the report.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    Scaled { name: String, from: i32, to: i32 },
    Unchanged { name: String, why: &'static str },
    Keda { name: String, paused: bool },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Scaled { name, from, to } => write!(f, "deployment/{name}: {from} -> {to}"),
            Change::Unchanged { name, why } => write!(f, "deployment/{name}: unchanged ({why})"),
            Change::Keda { name, paused } => write!(
                f,
                "scaledobject/{name}: {}",
                if *paused { "paused" } else { "resumed" }
            ),
        }
    }
}

async fn connect(args: &PauseArgs) -> anyhow::Result<(Client, String)> {
    let client = Client::try_default().await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    Ok((client, namespace))
}

/// The namespace's KEDA ScaledObjects API, or `None` when KEDA is not installed.
async fn scaled_objects(
    client: &Client,
    namespace: &str,
) -> anyhow::Result<Option<(Api<DynamicObject>, Vec<DynamicObject>)>> {
    let gvk = GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "scaledobjects");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    match api.list(&ListParams::default().labels(SELECTOR)).await {
        Ok(list) => Ok(Some((api, list.items))),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn set_keda(client: &Client, namespace: &str, paused: bool) -> anyhow::Result<Vec<Change>> {
    let Some((api, objects)) = scaled_objects(client, namespace).await? else {
        return Ok(Vec::new());
    };
    let value = if paused { json!("0") } else { json!(null) };
    let mut changes = Vec::new();
    for object in objects {
        let Some(name) = object.metadata.name else {
            continue;
        };
        let patch = json!({ "metadata": { "annotations": { KEDA_PAUSED: value } } });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        changes.push(Change::Keda { name, paused });
    }
    Ok(changes)
}

async fn deployments(
    client: &Client,
    namespace: &str,
) -> anyhow::Result<(Api<Deployment>, Vec<Deployment>)> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&ListParams::default().labels(SELECTOR)).await?;
    Ok((api, list.items))
}

fn remembered(deployment: &Deployment) -> Option<&String> {
    deployment
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PAUSED_REPLICAS))
}

pub async fn pause(args: PauseArgs) -> anyhow::Result<()> {
    let (client, namespace) = connect(&args).await?;
    let mut changes = set_keda(&client, &namespace, true).await?;
    let (api, items) = deployments(&client, &namespace).await?;
    for deployment in items {
        let Some(name) = deployment.metadata.name.clone() else {
            continue;
        };
        if remembered(&deployment).is_some() {
            changes.push(Change::Unchanged {
                name,
                why: "already paused",
            });
            continue;
        }
        let replicas = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        let patch = json!({
            "metadata": { "annotations": { PAUSED_REPLICAS: replicas.to_string() } },
            "spec": { "replicas": 0 },
        });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        changes.push(Change::Scaled {
            name,
            from: replicas,
            to: 0,
        });
    }
    report("paused", &namespace, &changes);
    Ok(())
}

pub async fn resume(args: PauseArgs) -> anyhow::Result<()> {
    let (client, namespace) = connect(&args).await?;
    let (api, items) = deployments(&client, &namespace).await?;
    let mut changes = Vec::new();
    for deployment in items {
        let Some(name) = deployment.metadata.name.clone() else {
            continue;
        };
        let Some(count) = remembered(&deployment) else {
            changes.push(Change::Unchanged {
                name,
                why: "not paused",
            });
            continue;
        };
        let replicas: i32 = count.parse().map_err(|_| {
            anyhow::anyhow!(
                "deployment/{name}: {PAUSED_REPLICAS} is {count:?}, not a replica count"
            )
        })?;
        let from = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(0);
        let patch = json!({
            "metadata": { "annotations": { PAUSED_REPLICAS: null } },
            "spec": { "replicas": replicas },
        });
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        changes.push(Change::Scaled {
            name,
            from,
            to: replicas,
        });
    }
    // KEDA last: the Deployments are back before it may scale them.
    changes.extend(set_keda(&client, &namespace, false).await?);
    report("resumed", &namespace, &changes);
    Ok(())
}

fn report(what: &str, namespace: &str, changes: &[Change]) {
    println!("{what} namespace {namespace}:");
    for change in changes {
        println!("  {change}");
    }
    if changes.is_empty() {
        println!("  nothing labelled {SELECTOR}");
    }
}
