module goway.bench/peers

go 1.19
