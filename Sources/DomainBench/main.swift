print("domain-bench")
