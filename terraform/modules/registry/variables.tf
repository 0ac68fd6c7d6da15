variable "repository_names" {
  description = "Repositories to create (the cd workflow's ECR_REPOSITORY)."
  type        = list(string)
  default     = ["llmops-rag-pipeline"]
}

variable "kms_key_arn" {
  description = "Key that encrypts the images."
  type        = string
}

variable "untagged_expiry_days" {
  description = "Days an untagged image is kept."
  type        = number
  default     = 7
}

variable "tagged_images_kept" {
  description = "Newest images kept."
  type        = number
  default     = 200
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
