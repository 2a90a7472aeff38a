print("interop-test-server")
