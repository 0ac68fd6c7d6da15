variable "name" {
  description = "Prefix of every name in the environment, e.g. rag-dev."
  type        = string
}

variable "vpc_id" {
  description = "The VPC (from the network module)."
  type        = string
}

variable "vpc_cidr_block" {
  description = "The VPC's address range; the endpoints accept HTTPS from it."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets in zone order; NAT gateway i goes into subnet i."
  type        = list(string)
}

variable "private_route_table_ids" {
  description = "Private route tables in zone order; each gets a default route to a NAT gateway."
  type        = list(string)
}

variable "endpoint_subnet_ids" {
  description = "Subnets of the interface endpoints' network interfaces (one per zone)."
  type        = list(string)
}

variable "nat_gateway_count" {
  description = "NAT gateways: 1 (dev: cheap, one zone's outage cuts egress) or 3 (prod: one per zone)."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1, 3], var.nat_gateway_count)
    error_message = "nat_gateway_count is 0 (no egress), 1 or 3 (one per zone)."
  }
}

variable "interface_endpoint_services" {
  description = "Services reached through interface endpoints instead of the NAT gateways."
  type        = list(string)
  default     = ["sqs", "bedrock-runtime", "ecr.api", "ecr.dkr", "sts"]
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
