variable "bucket_name" {
  description = "The documents bucket's (globally unique) name; the services' object_store.bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "Key of the bucket's default encryption (SSE-KMS)."
  type        = string
}

variable "documents_queue_arn" {
  description = "Queue that gets the bucket's ObjectCreated and ObjectRemoved events; its policy must already let this bucket send."
  type        = string
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted version is kept before it expires."
  type        = number
  default     = 30
}

variable "noncurrent_versions_kept" {
  description = "Noncurrent versions kept however old (the most recent ones)."
  type        = number
  default     = 3
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
