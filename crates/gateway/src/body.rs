//! The JSON bodies the API answers with, as types: the handlers build these, and the
//! OpenAPI document (`openapi`) describes them from the same definitions, so the two cannot
//! drift apart.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// Whether an answer came from the cache, and from which layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheResult {
    /// Written for this question.
    Miss,
    /// The same normalised question, in the same scope.
    Exact,
    /// An earlier question of the same scope at cosine similarity ≥ the threshold.
    Semantic,
}

impl From<rag_proto::CacheStatus> for CacheResult {
    fn from(status: rag_proto::CacheStatus) -> Self {
        match status {
            rag_proto::CacheStatus::Exact => Self::Exact,
            rag_proto::CacheStatus::Semantic => Self::Semantic,
            rag_proto::CacheStatus::Miss | rag_proto::CacheStatus::Unspecified => Self::Miss,
        }
    }
}

/// An answer and how it was made.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Answer {
    /// The id to rate the answer by (`POST /v1/feedback`).
    pub query_id: String,
    /// The answer's text, with `[n]` marks naming its citations.
    pub answer: String,
    /// False when the documents did not answer the question ("I don't know").
    pub grounded: bool,
    pub citations: Vec<Citation>,
    pub model: String,
    /// `light` or `strong`.
    pub tier: String,
    /// Why the question was routed to its tier.
    pub tier_reasons: Vec<String>,
    pub prompt_version: String,
    pub cache: CacheResult,
    pub usage: Usage,
    pub latency_ms: u64,
}

/// A passage the answer cites: its `[n]` mark, where it comes from, and the text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Citation {
    /// The `n` of the answer's `[n]` marks.
    pub number: u32,
    pub document_id: String,
    pub title: String,
    pub domain: String,
    pub chunk_index: u32,
    /// The page the passage starts on, for paged documents (PDF).
    pub page: Option<u32>,
    pub score: f32,
    /// The cited text (personal data masked).
    pub snippet: String,
}

/// The model tokens an answer used and their estimated cost.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cost_usd: f64,
}

impl From<&rag_proto::AnswerResponse> for Answer {
    fn from(r: &rag_proto::AnswerResponse) -> Self {
        let usage = r.usage.unwrap_or_default();
        Self {
            query_id: r.query_id.clone(),
            answer: r.answer.clone(),
            grounded: r.grounded,
            citations: r
                .citations
                .iter()
                .map(|c| Citation {
                    number: c.number,
                    document_id: c.document_id.clone(),
                    title: c.title.clone(),
                    domain: c.domain.clone(),
                    chunk_index: c.chunk_index,
                    page: c.page,
                    score: c.score,
                    snippet: c.snippet.clone(),
                })
                .collect(),
            model: r.model.clone(),
            tier: r.tier.clone(),
            tier_reasons: r.tier_reasons.clone(),
            prompt_version: r.prompt_version.clone(),
            cache: r.cache().into(),
            usage: Usage {
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cost_usd: usage.cost_usd,
            },
            latency_ms: r.latency_ms,
        }
    }
}

/// The data of a streamed answer's `token` event: the next piece of its text.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenEvent {
    pub text: String,
}

/// The data of a streamed answer's `error` event (the stream ends after it).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEvent {
    pub code: String,
    pub message: String,
}

/// A stored rating and the answer it rates.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedbackStored {
    pub query_id: String,
    /// `up` or `down`.
    pub rating: String,
    pub answer: RatedAnswer,
    /// A thumbs-down removes the answer from the cache.
    pub evicted_from_cache: bool,
}

/// How a rated answer was made.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RatedAnswer {
    pub tier: String,
    pub prompt_version: String,
    pub cache: CacheResult,
    pub model: String,
}

/// The tenant's answers and ratings, in total and broken down.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedbackSummary {
    pub answers: u64,
    pub rated: u64,
    pub up: u64,
    pub down: u64,
    pub by_tier: Vec<Breakdown>,
    pub by_prompt_version: Vec<Breakdown>,
    pub by_cache: Vec<Breakdown>,
    pub by_model: Vec<Breakdown>,
}

/// Answers and ratings of one tier, prompt version, cache result or model.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Breakdown {
    pub key: String,
    pub answers: u64,
    pub up: u64,
    pub down: u64,
    /// Thumbs-down among the rated answers; null when none is rated.
    pub down_share: Option<f64>,
}

impl From<&rag_proto::FeedbackBreakdown> for Breakdown {
    fn from(b: &rag_proto::FeedbackBreakdown) -> Self {
        let rated = b.up + b.down;
        Self {
            key: b.key.clone(),
            answers: b.answers,
            up: b.up,
            down: b.down,
            down_share: (rated > 0).then(|| b.down as f64 / rated as f64),
        }
    }
}

impl From<&rag_proto::FeedbackSummary> for FeedbackSummary {
    fn from(s: &rag_proto::FeedbackSummary) -> Self {
        let rows = |b: &[rag_proto::FeedbackBreakdown]| b.iter().map(Breakdown::from).collect();
        Self {
            answers: s.answers,
            rated: s.rated,
            up: s.up,
            down: s.down,
            by_tier: rows(&s.by_tier),
            by_prompt_version: rows(&s.by_prompt_version),
            by_cache: rows(&s.by_cache),
            by_model: rows(&s.by_model),
        }
    }
}

/// Where a document is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocumentStatus {
    Queued,
    Processing,
    Indexed,
    Failed,
    Deleting,
    Deleted,
    Unknown,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Processing => "processing",
            Self::Indexed => "indexed",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
            Self::Deleted => "deleted",
            Self::Unknown => "unknown",
        }
    }
}

impl From<rag_proto::DocumentState> for DocumentStatus {
    fn from(state: rag_proto::DocumentState) -> Self {
        match state {
            rag_proto::DocumentState::Queued => Self::Queued,
            rag_proto::DocumentState::Processing => Self::Processing,
            rag_proto::DocumentState::Indexed => Self::Indexed,
            rag_proto::DocumentState::Failed => Self::Failed,
            rag_proto::DocumentState::Deleting => Self::Deleting,
            rag_proto::DocumentState::Deleted => Self::Deleted,
            rag_proto::DocumentState::Unspecified => Self::Unknown,
        }
    }
}

/// A document of the caller's tenant.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentView {
    /// A UUIDv5 of (tenant, domain, file name): uploading the same name again replaces it.
    pub id: String,
    pub title: String,
    pub domain: String,
    pub status: DocumentStatus,
    pub version: u64,
    pub chunk_count: u32,
    pub size_bytes: u64,
    /// Why the document failed, when it did.
    pub error: Option<String>,
    pub content_sha256: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl From<&rag_proto::Document> for DocumentView {
    fn from(d: &rag_proto::Document) -> Self {
        Self {
            id: d.id.clone(),
            title: d.title.clone(),
            domain: d.domain.clone(),
            status: d.state().into(),
            version: d.version,
            chunk_count: d.chunk_count,
            size_bytes: d.size_bytes,
            error: (!d.error.is_empty()).then(|| d.error.clone()),
            content_sha256: (!d.content_sha256.is_empty()).then(|| d.content_sha256.clone()),
            created_at_ms: d.created_at_ms,
            updated_at_ms: d.updated_at_ms,
        }
    }
}

/// The tenant's documents and how many are in each status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DocumentList {
    pub documents: Vec<DocumentView>,
    /// Documents by status (only the statuses that occur).
    pub counts: BTreeMap<String, u64>,
}

impl DocumentList {
    pub fn new(documents: Vec<DocumentView>) -> Self {
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for d in &documents {
            *counts.entry(d.status.as_str().to_owned()).or_default() += 1;
        }
        Self { documents, counts }
    }
}

/// The configured domains.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Domains {
    pub domains: Vec<DomainView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DomainView {
    pub name: String,
    pub description: String,
    /// The tier a question of this domain starts from.
    pub default_tier: String,
}

/// Every error: `{"error": {...}}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`invalid_argument`, `not_found`, ...).
    pub code: String,
    pub message: String,
    /// The request field at fault, for a bad request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request's trace id: quote it when reporting the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// `GET /health/live`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Live {
    /// Always `ok`.
    pub status: String,
}

/// `GET /health/ready`: `ready` or `not ready`, and which dependency answers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ready {
    pub status: String,
    pub checks: ReadyChecks,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct ReadyChecks {
    pub router: bool,
    pub documents: bool,
    pub object_store: bool,
}
