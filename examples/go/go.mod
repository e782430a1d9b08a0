module example.com/secret-zero-read-secret

go 1.19
