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
        "data_dir = \"/tmp/x\"\n[retriever]\nalpha = 0.5\n[gateway]\nlisten = \"0.0.0.0:9000\"\n\n[[domains]]\nname = \"finance\"\ndefault_tier = \"strong\""
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
