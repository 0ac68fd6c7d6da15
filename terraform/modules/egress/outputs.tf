output "nat_public_ips" {
  description = "Addresses the VPC's outbound traffic comes from (allow-list them upstream)."
  value       = aws_eip.nat[*].public_ip
}

output "interface_endpoint_ids" {
  description = "Interface endpoints by service."
  value       = { for service, endpoint in aws_vpc_endpoint.interface : service => endpoint.id }
}
