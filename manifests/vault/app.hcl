# secret-zero: policy of an application's agent (`secret-zero serve`).
#
# Decrypt with one Transit key and nothing else. The agent also revokes its own token
# when done (auth/token/revoke-self), which Vault's built-in `default` policy allows;
# keep `default` attached to the role (token_no_default_policy=false, the default).
#
# Written for Transit mount "transit" and key "shop-app": setup.sh rewrites both.
path "transit/decrypt/shop-app" {
  capabilities = ["update"]
}
