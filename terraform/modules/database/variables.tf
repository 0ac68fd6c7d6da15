variable "name" {
  description = "Prefix of every name in the environment, e.g. rag-dev."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the database."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "Key for storage, Performance Insights and the master password's secret."
  type        = string
}

variable "engine_major_version" {
  description = "PostgreSQL major version (the parameter group's family)."
  type        = string
  default     = "16"
}

variable "engine_version" {
  description = "PostgreSQL version."
  type        = string
  default     = "16.8"
}

variable "instance_class" {
  description = "Instance class."
  type        = string
  default     = "db.t4g.micro"
}

variable "allocated_storage_gib" {
  description = "Initial storage."
  type        = number
  default     = 20
}

variable "max_allocated_storage_gib" {
  description = "Storage autoscaling ceiling."
  type        = number
  default     = 100
}

variable "multi_az" {
  description = "A standby in a second zone (prod)."
  type        = bool
  default     = false
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery)."
  type        = number
  default     = 7
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
