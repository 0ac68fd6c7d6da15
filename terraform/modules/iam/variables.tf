variable "name" {
  description = "Prefix of the role names, e.g. rag-dev (roles rag-dev-gateway, ...)."
  type        = string
}

variable "oidc_provider_arn" {
  description = "The cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_provider_host" {
  description = "The cluster's OIDC issuer without https://."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the five services."
  type        = string
}

variable "service_account_names" {
  description = "ServiceAccount name per service where it is not the service's name."
  type        = map(string)
  default     = {}
}

variable "bucket_arn" {
  description = "The documents bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "The key of the bucket's (and the secrets') encryption."
  type        = string
}

variable "documents_queue_arn" {
  description = "The documents queue."
  type        = string
}

variable "documents_dlq_arn" {
  description = "The documents queue's dead-letter queue."
  type        = string
}

variable "chunks_queue_arn" {
  description = "The chunks queue."
  type        = string
}

variable "chunks_dlq_arn" {
  description = "The chunks queue's dead-letter queue."
  type        = string
}

variable "embedding_model_id" {
  description = "The embedder's Bedrock model (embedding.model_id)."
  type        = string
  default     = "amazon.titan-embed-text-v2:0"
}

variable "generation_model_ids" {
  description = "The router's Bedrock models (generation.light / generation.strong model_id)."
  type        = list(string)
  default     = ["amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"]
}

variable "keda_enabled" {
  description = "Create a role for the KEDA operator that reads the two queues' depth."
  type        = bool
  default     = true
}

variable "keda_namespace" {
  description = "Namespace of the KEDA operator."
  type        = string
  default     = "keda"
}

variable "secret_arns" {
  description = "Secrets the External Secrets operator may read (none: no role)."
  type        = list(string)
  default     = []
}

variable "external_secrets_namespace" {
  description = "Namespace of the External Secrets operator."
  type        = string
  default     = "external-secrets"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
