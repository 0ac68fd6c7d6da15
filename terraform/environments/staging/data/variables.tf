variable "region" {
  description = "The environment's region (Bedrock Titan V2 and Nova Lite/Pro by their foundation-model ids)."
  type        = string
  default     = "us-east-1"
}

variable "account_id" {
  description = "The AWS account of the environment; the provider refuses any other."
  type        = string
}
