module pubsub_kv

go 1.19
