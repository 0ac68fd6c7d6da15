variable "name" {
  description = "Prefix of the role names."
  type        = string
}

variable "repository" {
  description = "GitHub repository allowed to assume the roles, owner/name."
  type        = string
}

variable "oidc_provider_arn" {
  description = "The account's IAM OIDC provider for token.actions.githubusercontent.com."
  type        = string
}

variable "region" {
  description = "Region of the bucket (for the KMS via-service condition)."
  type        = string
  default     = null
}

variable "data_sync" {
  description = "The data-sync role: GitHub environment, bucket, key and the prefix it mirrors."
  type = object({
    environment = string
    bucket_arn  = string
    kms_key_arn = string
    prefix      = optional(string, "documents/")
  })
  default = null
}

variable "deploy" {
  description = "The deploy role: GitHub environment, cluster and the namespace it administers."
  type = object({
    environment  = string
    cluster_name = string
    cluster_arn  = string
    namespace    = string
  })
  default = null
}

variable "ecr_push" {
  description = "The image push role: the branch whose workflows may push, and the repositories."
  type = object({
    ref             = optional(string, "refs/heads/main")
    repository_arns = list(string)
  })
  default = null
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
