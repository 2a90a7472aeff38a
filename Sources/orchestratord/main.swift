print("orchestratord")
