# Everything the data stack exports, for the compute layer's terraform_remote_state and
# for the services' configuration (bucket and queue names).
output "data" {
  description = "The data layer's outputs."
  value       = module.data
}
