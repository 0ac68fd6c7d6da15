variable "environment" {
  description = "dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment is dev, staging or prod."
  }
}

variable "availability_zones" {
  description = "Three zones of the region."
  type        = list(string)
}

variable "vpc_cidr_block" {
  description = "The VPC's range (distinct per environment, so they can be peered)."
  type        = string
}

variable "documents_bucket_name" {
  description = "The documents bucket (globally unique)."
  type        = string
}

variable "noncurrent_version_expiration_days" {
  description = "Days replaced and deleted document versions are kept."
  type        = number
  default     = 30
}

variable "queue_visibility_timeout_seconds" {
  description = "queues.visibility_timeout_secs of the services."
  type        = number
  default     = 60
}

variable "queue_max_receives" {
  description = "queues.max_receives of the services: receives before the dead-letter queue."
  type        = number
  default     = 5
}

variable "redrive_role_arns" {
  description = "Operator roles that may redrive the documents dead letters into the documents queue."
  type        = list(string)
  default     = []
}

variable "database_instance_class" {
  description = "Feedback database instance class."
  type        = string
  default     = "db.t4g.micro"
}

variable "database_multi_az" {
  description = "A standby database in a second zone."
  type        = bool
  default     = false
}

variable "database_backup_retention_days" {
  description = "Days of point-in-time recovery."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Days VPC flow logs are kept."
  type        = number
  default     = 365
}

variable "github_repository" {
  description = "owner/name of the repository whose data-sync workflow mirrors data/documents/ (null: no CI role)."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
