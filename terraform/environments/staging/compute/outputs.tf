output "compute" {
  description = "Cluster name, IRSA role per ServiceAccount, the cache's secret, the NAT addresses, the deploy role."
  value       = module.compute
}
