variable "name" {
  description = "Prefix of every name in the environment, e.g. rag-dev."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the cache nodes."
  type        = list(string)
}

variable "client_security_group_id" {
  description = "The only security group allowed in on 6379: the EKS nodes'."
  type        = string
}

variable "kms_key_arn" {
  description = "Key for encryption at rest and for the AUTH token's secret."
  type        = string
}

variable "engine" {
  description = "valkey (cheaper, Redis OSS compatible) or redis."
  type        = string
  default     = "valkey"
}

variable "engine_version" {
  description = "Engine version."
  type        = string
  default     = "8.0"
}

variable "parameter_group_name" {
  description = "Parameter group; the default sets no maxmemory policy beyond volatile-lru."
  type        = string
  default     = "default.valkey8"
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  default     = "cache.t4g.micro"
}

variable "replicas" {
  description = "Replicas besides the primary (0 in dev; 1 or more turns on automatic failover across zones)."
  type        = number
  default     = 0
}

variable "maintenance_window" {
  description = "Weekly maintenance window (UTC)."
  type        = string
  default     = "sun:03:00-sun:04:00"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
