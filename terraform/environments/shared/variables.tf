variable "region" {
  description = "Region of the image repository."
  type        = string
  default     = "us-east-1"
}

variable "account_id" {
  description = "The AWS account; the provider refuses any other."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the repository whose cd workflow pushes images."
  type        = string
  default     = "acme/llmops-rag-pipeline"
}
