use std::collections::BTreeMap;
use std::io::Write;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Environment {
    Environment::Map(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[test]
fn defaults_are_valid() {
    let s = Settings::load(None, &env(&[])).unwrap();
    assert_eq!(s, Settings::default());
    assert_eq!(s.retriever.alpha, 0.7);
}

#[test]
fn file_then_environment_override() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "data_dir = \"/tmp/x\"\n[retriever]\nalpha = 0.5\n[gateway]\nlisten = \"0.0.0.0:9000\"\nauth = {{ mode = \"api_keys\", keys_file = \"/etc/rag/api-keys.toml\" }}\n\n[[domains]]\nname = \"finance\"\ndefault_tier = \"strong\""
    )
    .unwrap();
    let s = Settings::load(
        Some(file.path()),
        &env(&[
            ("RAG__RETRIEVER__ALPHA", "0.9"),
            ("RAG__ROUTER__TOP_K", "8"),
            ("OTHER", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(s.retriever.alpha, 0.9);
    assert_eq!(s.router.top_k, 8);
    assert_eq!(s.gateway.listen.port(), 9000);
    assert_eq!(s.domains.len(), 1);
    assert_eq!(
        s.domain("finance").map(|d| d.default_tier),
        Some(Tier::Strong)
    );
}

#[test]
fn bad_values_name_the_key() {
    let err = Settings::load(None, &env(&[("RAG__RETRIEVER__ALPHA", "1.5")])).unwrap_err();
    assert!(err.to_string().contains("retriever.alpha"), "{err}");
    let err = Settings::load(None, &env(&[("RAG__ROUTER__TOP_K", "many")])).unwrap_err();
    assert!(err.to_string().contains("top_k"), "{err}");
    let err = Settings::load(None, &env(&[("RAG__GATEWAY__ROUTER_URL", "router:1")])).unwrap_err();
    assert!(err.to_string().contains("gateway.router_url"), "{err}");
}

#[test]
fn unknown_keys_and_missing_files_are_errors() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[retriever]\nalpah = 0.5").unwrap();
    let err = Settings::load(Some(file.path()), &env(&[])).unwrap_err();
    assert!(err.to_string().contains("alpah"), "{err}");
    let err = Settings::load(Some(Path::new("/nonexistent.toml")), &env(&[])).unwrap_err();
    assert!(matches!(err, ConfigError::MissingFile(_)));
}

#[test]
fn backend_sections_are_tagged() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "[vector_store]\nkind = \"edge\"\npath = \"/var/lib/rag/vectors\""
    )
    .unwrap();
    let s = Settings::load(Some(file.path()), &env(&[])).unwrap();
    assert_eq!(
        s.vector_store,
        VectorStoreSettings::Edge {
            path: "/var/lib/rag/vectors".into()
        }
    );
    assert_eq!(s.data_path(Path::new("/abs")), PathBuf::from("/abs"));
    assert_eq!(
        s.data_path(Path::new("rel")),
        PathBuf::from("/tmp/x/rel")
            .strip_prefix("/tmp/x")
            .map(|p| s.data_dir.join(p))
            .unwrap()
    );
}

#[test]
fn a_redis_cache_takes_defaults_and_is_checked() {
    let s = Settings::load(
        None,
        &env(&[
            ("RAG__CACHE__BACKEND__KIND", "redis"),
            ("RAG__CACHE__BACKEND__URL", "redis://cache.internal:6379/2"),
        ]),
    )
    .unwrap();
    assert_eq!(
        s.cache.backend,
        CacheBackend::Redis {
            url: "redis://cache.internal:6379/2".into(),
            pool_size: 4,
            command_timeout_ms: 250,
            key_prefix: "rag:".into(),
            ca_file: None,
        }
    );
    let err = Settings::load(
        None,
        &env(&[
            ("RAG__CACHE__BACKEND__KIND", "redis"),
            ("RAG__CACHE__BACKEND__URL", "cache.internal:6379"),
        ]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cache.backend.url"), "{err}");
}

#[test]
fn cluster_backends_parse_from_a_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "[aws]\nregion = \"eu-west-1\"\nendpoint_url = \"http://127.0.0.1:5000\"\ncredentials = \"emulator\"\n\
         [object_store]\nkind = \"s3\"\nbucket = \"docs\"\nforce_path_style = true\n\
         [queues.backend]\nkind = \"sqs\"\ncreate_missing = true\n\
         [vector_store]\nkind = \"qdrant\"\nurl = \"http://qdrant:6334\"\ncollection = \"chunks\"\napi_key_env = \"QDRANT_API_KEY\""
    )
    .unwrap();
    let s = Settings::load(Some(file.path()), &env(&[])).unwrap();
    assert_eq!(s.aws.region, "eu-west-1");
    assert_eq!(s.aws.credentials, AwsCredentials::Emulator);
    assert_eq!(
        s.object_store,
        ObjectStoreSettings::S3 {
            bucket: "docs".into(),
            force_path_style: true
        }
    );
    assert_eq!(
        s.queues.backend,
        QueueBackend::Sqs {
            create_missing: true
        }
    );
    assert_eq!(
        s.vector_store,
        VectorStoreSettings::Qdrant {
            url: "http://qdrant:6334".into(),
            collection: "chunks".into(),
            api_key_env: Some("QDRANT_API_KEY".into()),
        }
    );
}

#[test]
fn emulator_credentials_need_a_loopback_endpoint() {
    let load = |endpoint: &str| {
        Settings::load(
            None,
            &env(&[
                ("RAG__AWS__CREDENTIALS", "emulator"),
                ("RAG__AWS__ENDPOINT_URL", endpoint),
            ]),
        )
    };
    for ok in [
        "http://127.0.0.1:5000",
        "http://localhost:4566/",
        "http://[::1]:9000",
    ] {
        assert!(load(ok).is_ok(), "{ok}");
    }
    for bad in [
        "https://s3.amazonaws.com",
        "http://10.0.0.1:5000",
        "http://127.0.0.1.evil.com",
    ] {
        let err = load(bad).unwrap_err().to_string();
        assert!(err.contains("aws.credentials"), "{bad}: {err}");
    }
    let err = Settings::load(None, &env(&[("RAG__AWS__CREDENTIALS", "emulator")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("aws.credentials"), "{err}");
}

#[test]
fn generation_prompts_guardrails_and_feedback_from_a_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        r#"
[generation.light]
kind = "bedrock"
model_id = "amazon.nova-lite-v1:0"
[generation.strong]
kind = "openai"
base_url = "http://127.0.0.1:11434/v1"
model = "llama3"
[prompts]
name = "answer"
versions = [{{ version = "v1", weight = 50 }}, {{ version = "v2", weight = 50 }}]
[guardrails]
denied_topics = [{{ name = "medical advice", phrases = ["diagnosis", "prescription"] }}]
[feedback]
kind = "postgres"
url = "postgres://rag@db:5432/rag"
[[domains]]
name = "hr"
semantic_threshold = 0.9
denied_topics = [{{ name = "salaries of colleagues", phrases = ["salary of"] }}]
"#
    )
    .unwrap();
    let s = Settings::load(Some(file.path()), &env(&[])).unwrap();
    assert!(
        matches!(s.generation.light, GeneratorSettings::Bedrock { ref model_id, streaming: true, .. } if model_id == "amazon.nova-lite-v1:0")
    );
    assert!(
        matches!(s.generation.strong, GeneratorSettings::Openai { ref model, .. } if model == "llama3")
    );
    assert_eq!(s.prompts.versions.len(), 2);
    assert_eq!(s.guardrails.denied_topics[0].phrases.len(), 2);
    assert_eq!(s.domain("hr").unwrap().semantic_threshold, Some(0.9));
    assert!(matches!(s.feedback, FeedbackSettings::Postgres { .. }));
}

#[test]
fn bad_generation_settings_name_the_key() {
    for (key, value, named) in [
        (
            "RAG__CACHE__SEMANTIC_THRESHOLD",
            "0.2",
            "cache.semantic_threshold",
        ),
        (
            "RAG__GENERATION__TEMPERATURE",
            "3",
            "generation.temperature",
        ),
        (
            "RAG__GENERATION__MAX_CONTEXT_PASSAGES",
            "0",
            "generation.max_context_passages",
        ),
        ("RAG__PROMPTS__NAME", "no/slash", "prompts.name"),
    ] {
        let e = Settings::load(None, &env(&[(key, value)])).unwrap_err();
        assert!(e.to_string().contains(named), "{key}: {e}");
    }
}

#[test]
fn a_local_model_tier_from_a_file_with_defaults_and_checked_bounds() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[generation.light]\nkind = \"local\"").unwrap();
    let s = Settings::load(Some(file.path()), &env(&[])).unwrap();
    assert_eq!(s.generation.light, GeneratorSettings::local(None));
    assert!(matches!(
        s.generation.light,
        GeneratorSettings::Local {
            model_path: None,
            context_tokens: 2048,
            max_waiting: 4,
            timeout_ms: 60_000,
            ..
        }
    ));
    assert_eq!(s.generation.strong, GeneratorSettings::Extractive);
    assert_eq!(s.cost_usd("SmolLM2-135M-Instruct.Q4_1", 1_000, 1_000), 0.0);

    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "[generation.strong]\nkind = \"local\"\nmodel_path = \"/models/m.gguf\"\nmodel_id = \"smol\"\ncontext_tokens = 1024\nseed = 7"
    )
    .unwrap();
    let s = Settings::load(Some(file.path()), &env(&[])).unwrap();
    assert!(matches!(
        s.generation.strong,
        GeneratorSettings::Local { ref model_path, ref model_id, context_tokens: 1024, seed: 7, .. }
            if model_path.as_deref() == Some(std::path::Path::new("/models/m.gguf"))
                && model_id.as_deref() == Some("smol")
    ));

    for (body, named) in [
        ("context_tokens = 100", "context_tokens"),
        ("context_tokens = 8192", "context_tokens"),
        ("max_waiting = 5000", "max_waiting"),
        ("timeout_ms = 0", "timeout_ms"),
        ("repeat_penalty = 0.5", "repeat_penalty"),
        ("model_path = \"\"", "model_path"),
        ("model_id = \" \"", "model_id"),
    ] {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "[generation.light]\nkind = \"local\"\n{body}").unwrap();
        let e = Settings::load(Some(file.path()), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("generation.light") && e.contains(named),
            "{body}: {e}"
        );
    }
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[generation.light]\nkind = \"local\"\nthreads = 4").unwrap();
    assert!(Settings::load(Some(file.path()), &env(&[])).is_err());
}

#[test]
fn cost_follows_the_price_table() {
    let s = Settings::default();
    // Nova Lite: $0.06 in, $0.24 out per million tokens.
    let cost = s.cost_usd("amazon.nova-lite-v1:0", 1_000_000, 500_000);
    assert!((cost - 0.18).abs() < 1e-9, "{cost}");
    assert_eq!(s.cost_usd("extractive-v1", 1_000, 1_000), 0.0);
}

#[test]
fn neighbours_are_bounded_by_max_neighbours() {
    let s = Settings::load(None, &env(&[("RAG__RETRIEVER__NEIGHBOURS", "2")])).unwrap();
    assert_eq!((s.retriever.neighbours, s.retriever.max_neighbours), (2, 3));
    let e = Settings::load(None, &env(&[("RAG__RETRIEVER__NEIGHBOURS", "4")])).unwrap_err();
    assert!(e.to_string().contains("retriever.neighbours"), "{e}");

    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        "[retriever]\nmax_neighbours = 2\n[[domains]]\nname = \"hr\"\nneighbours = 1\n"
    )
    .unwrap();
    let s = Settings::load(Some(file.path()), &env(&[])).unwrap();
    assert_eq!(s.domain("hr").unwrap().neighbours, Some(1));
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(file, "[[domains]]\nname = \"hr\"\nneighbours = 5\n").unwrap();
    let e = Settings::load(Some(file.path()), &env(&[])).unwrap_err();
    assert!(e.to_string().contains("domains.neighbours"), "{e}");
}

#[test]
fn an_open_gateway_must_listen_on_loopback() {
    let mut s = Settings::default();
    s.gateway.listen = "0.0.0.0:8080".parse().unwrap();
    let e = s.validate().unwrap_err().to_string();
    assert!(
        e.contains("gateway.auth.mode") && e.contains("loopback"),
        "{e}"
    );
    s.gateway.auth.mode = AuthMode::ApiKeys;
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("gateway.auth.keys_file"), "{e}");
    s.gateway.auth.keys_file = Some(PathBuf::from("/etc/rag/api-keys.toml"));
    s.validate().unwrap();
    s.gateway.auth.mode = AuthMode::None;
    s.gateway.listen = "[::1]:8080".parse().unwrap();
    s.validate().unwrap();
}

#[test]
fn the_reranker_is_off_by_default_and_configured_by_kind() {
    let s = Settings::load(None, &env(&[])).unwrap();
    assert_eq!(s.reranker, RerankerSettings::None);
    assert_eq!(s.reranker.model_id(), None);
    assert!(!s.retriever.rerank);
    assert_eq!(s.retriever.rerank_candidates, 30);

    // From the environment, with the defaults of the kind.
    let s = Settings::load(
        None,
        &env(&[
            ("RAG__RERANKER__KIND", "bedrock"),
            ("RAG__RETRIEVER__RERANK", "true"),
            ("RAG__RETRIEVER__RERANK_CANDIDATES", "50"),
        ]),
    )
    .unwrap();
    assert_eq!(
        s.reranker,
        RerankerSettings::Bedrock {
            model_id: "cohere.rerank-v3-5:0".into(),
            max_attempts: 8,
            endpoint_url: None,
        }
    );
    assert_eq!(
        (s.retriever.rerank, s.retriever.rerank_candidates),
        (true, 50)
    );

    // From a file, with a domain that turns it on.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        "[reranker]\nkind = \"cross_encoder\"\nmodel_dir = \"/models/ms-marco-MiniLM-L-6-v2\"\n\
         [[domains]]\nname = \"legal\"\nrerank = true\n"
    )
    .unwrap();
    let s = Settings::load(Some(file.path()), &env(&[])).unwrap();
    assert_eq!(
        s.reranker,
        RerankerSettings::CrossEncoder {
            model_dir: "/models/ms-marco-MiniLM-L-6-v2".into(),
            max_tokens: 512,
        }
    );
    assert_eq!(
        s.reranker.model_id().as_deref(),
        Some("ms-marco-MiniLM-L-6-v2")
    );
    assert_eq!(s.domain("legal").unwrap().rerank, Some(true));
}

#[test]
fn bad_reranker_settings_name_the_key() {
    for (pairs, key) in [
        // On by default, or in a domain, with no reranker.
        (vec![("RAG__RETRIEVER__RERANK", "true")], "retriever.rerank"),
        (
            vec![("RAG__RETRIEVER__RERANK_CANDIDATES", "0")],
            "retriever.rerank_candidates",
        ),
        (
            vec![("RAG__RETRIEVER__RERANK_CANDIDATES", "201")],
            "retriever.rerank_candidates",
        ),
        (vec![("RAG__RERANKER__KIND", "cross_encoder")], "model_dir"),
        (
            vec![
                ("RAG__RERANKER__KIND", "cross_encoder"),
                ("RAG__RERANKER__MODEL_DIR", "/m"),
                ("RAG__RERANKER__MAX_TOKENS", "4"),
            ],
            "reranker.max_tokens",
        ),
        (
            vec![
                ("RAG__RERANKER__KIND", "bedrock"),
                ("RAG__RERANKER__MODEL_ID", " "),
            ],
            "reranker.model_id",
        ),
        (
            vec![
                ("RAG__RERANKER__KIND", "bedrock"),
                ("RAG__RERANKER__ENDPOINT_URL", "bedrock:443"),
            ],
            "reranker.endpoint_url",
        ),
        (vec![("RAG__RERANKER__KIND", "colbert")], "colbert"),
    ] {
        let err = Settings::load(None, &env(&pairs)).unwrap_err();
        assert!(err.to_string().contains(key), "{pairs:?}: {err}");
    }
    let err = Settings::load(None, &env(&[("RAG__RETRIEVER__RERANK", "true")])).unwrap_err();
    assert!(err.to_string().contains("reranker.kind"), "{err}");

    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(file, "[[domains]]\nname = \"hr\"\nrerank = true\n").unwrap();
    let err = Settings::load(Some(file.path()), &env(&[])).unwrap_err();
    assert!(err.to_string().contains("domains.rerank"), "{err}");
}

#[test]
fn the_semantic_guard_is_lexical_by_default_and_set_per_domain() {
    let s = Settings::load(None, &env(&[])).unwrap();
    assert_eq!(s.cache.semantic_guard, SemanticGuard::Lexical);
    let s = Settings::load(None, &env(&[("RAG__CACHE__SEMANTIC_GUARD", "none")])).unwrap();
    assert_eq!(s.cache.semantic_guard, SemanticGuard::None);

    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "[cache]\nsemantic_guard = \"none\"\n[[domains]]\nname = \"hr\"\nsemantic_guard = \"lexical\"\n[[domains]]\nname = \"legal\""
    )
    .unwrap();
    let s = Settings::load(Some(file.path()), &env(&[])).unwrap();
    assert_eq!(s.cache.semantic_guard, SemanticGuard::None);
    assert_eq!(
        s.domain("hr").unwrap().semantic_guard,
        Some(SemanticGuard::Lexical)
    );
    assert_eq!(s.domain("legal").unwrap().semantic_guard, None);

    let e = Settings::load(None, &env(&[("RAG__CACHE__SEMANTIC_GUARD", "fuzzy")])).unwrap_err();
    assert!(e.to_string().contains("semantic_guard"), "{e}");
    assert!(e.to_string().contains("lexical"), "{e}");
}
