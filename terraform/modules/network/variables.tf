variable "name" {
  description = "Prefix of every name in the environment, e.g. rag-dev."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's address range; /16 leaves room for pod addresses."
  type        = string
  default     = "10.0.0.0/16"
}

variable "availability_zones" {
  description = "Three availability zones of the region."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 3
    error_message = "The network spans exactly three availability zones."
  }
}

variable "kms_key_arn" {
  description = "Key that encrypts the flow log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days flow logs are kept."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
