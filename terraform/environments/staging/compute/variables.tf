variable "region" {
  description = "The environment's region (Bedrock Titan V2 and Nova Lite/Pro by their foundation-model ids)."
  type        = string
  default     = "us-east-1"
}

variable "account_id" {
  description = "The AWS account of the environment; the provider refuses any other."
  type        = string
}

variable "api_allowed_cidrs" {
  description = "Addresses allowed to reach the cluster's public API endpoint (CD runners, VPN)."
  type        = list(string)
  default     = ["203.0.113.0/24"]
}

variable "admin_role_arns" {
  description = "IAM roles with cluster-admin (the platform team's SSO role)."
  type        = list(string)
  default     = []
}
