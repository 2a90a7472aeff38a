// Fixed test keys, generated once with Python `cryptography` (never used outside tests).
enum TestKeys {
    static let rsaPrivate = """
        -----BEGIN PRIVATE KEY-----
        MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDQyMYQ+HcmAcv9
        qRV87kPveRAgxulv/zPwT4G2pCdHLaYAfmW2T6nHaK+tMYOarcN6BIbNydppGi+0
        5dtA0jVFLfh3UEqflYaXkv0dOfEdcdaJnZLbYl1cReahlVgrNvQLnKxtQeTeTqQk
        toihdhAJjWq2po9FOF7z46TT0NWEKPz7GYXVi+cwgzeP9j+/WUwq1g3Z936stF3y
        x8mHcBZ1dNdm7sMcI60nLgY1/t2eFGywL6g51T062pnsuEO2tJzCsfDFI5mdODYW
        tpQvjZkiXm5DSzs2hrSSDw1/4TJbyWQsxxymQsW6z046t0dnngNa2xkicaIUwT99
        P3Yb0azhAgMBAAECggEADwMDRsYZXw4Nr56VhnGP80CA+d0DfNjcewC5zWWOfhjY
        pjwbA8RE61W/cpRW/OtV3PNFXreO8N6qo8xL0E8s+F0+pRQ3VrPGxSWS9c6BjoHt
        uzWtZlZzawaK937y+Mx5408vu1KxFOY8+Xd3FHuWL0b6mh5uD7vmtozdgENe5CJ4
        TyJER2kaq+2ffJ18u5WJmFNnhBNIKESYCW/jnfURUoI1i8t1k/jHNraaIAt2vW2T
        tT/sRehDT+T5KsYcfH2450NbSRaOfYR/OO+WqvC4zcVyzyhiFAoUvj5E5zNtSqRM
        EsSijBP49Nszs4XFUbmW/IRCdoJXS/ujR/4cVe8qzwKBgQD6uQWujMk+5ujf8b/t
        AfegbHlX6Lj4s4JYvIXimD1oJdqZuSBd0wtlIqlfMhYxK4vqQpUUMoO2LkpMvDqV
        mGPhXKvuMpA0K5H5+L98ITg8VeFA0XAoGqUyY2Z3Mt8tGwoeXolH6/+w0LhN3Bs2
        AEy/20ST/e5DYsSLAIQ+K6c8cwKBgQDVLcXlFTNvy1R0YWmCBycPV6EEmb4k3ELt
        QssA5vUTlQyke/8pVHKzBBpFGaTieQ2tQbM7jCWqEEmnhcUY+ZZ1PpXyr04yatmd
        lYqIdToBIXGCx0HSe0fBa37dXy48AuGoyWUjSqd+vEh/6xDThlyIwEUAu2ZzedyC
        vk0mwAgQWwKBgB+Svzls90bZk0foTLAPCF0Ga/17DBgdmvOLwhx36Xu9EJs9KetG
        0W+J/uRDDXJhtnvoqJdjiRyfFbI2HfaKu0E9B1W2vlwjhH2DKrH6CPfoJLah6UrT
        mCwRQm0OVfZ7KjoK06Tf/lII5ry/VBnnzcJ3XVp5ptCLlo6eoQinPKcrAoGAeUsv
        AzY56w0NA579ck9xiQg6BK0ZhE2TAv5zFRNUNI0lAV3QBAsZrAPUkqaRq45nGsJ8
        IZCPSaE0102EpL42PoWaudfHLWagZUpV5WiV1VjbBicrq4AbhtEMARcL7ndRQEE+
        +4KZpMGqmqX8D+6uLd0AJfd6xo96ySVQLpEqxWsCgYA7Ib+/+8Hy9dNjpm7L3FOi
        zHuhfZ4myLaDTUgz1fqy6NV2O38WJlcZqolRWuh7rO2kT8YnMqXs4oELDP+DP7Pc
        JaCWxiOsJjqi/pPcn0acKlYkjifNXQ06apFxQXATUvXR2s6hZDR2YusQc0wf/X5K
        jwmmBqGe9A6+FiLWwKGNMA==
        -----END PRIVATE KEY-----
        """

    static let rsaPublic = """
        -----BEGIN PUBLIC KEY-----
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA0MjGEPh3JgHL/akVfO5D
        73kQIMbpb/8z8E+BtqQnRy2mAH5ltk+px2ivrTGDmq3DegSGzcnaaRovtOXbQNI1
        RS34d1BKn5WGl5L9HTnxHXHWiZ2S22JdXEXmoZVYKzb0C5ysbUHk3k6kJLaIoXYQ
        CY1qtqaPRThe8+Ok09DVhCj8+xmF1YvnMIM3j/Y/v1lMKtYN2fd+rLRd8sfJh3AW
        dXTXZu7DHCOtJy4GNf7dnhRssC+oOdU9OtqZ7LhDtrScwrHwxSOZnTg2FraUL42Z
        Il5uQ0s7Noa0kg8Nf+EyW8lkLMccpkLFus9OOrdHZ54DWtsZInGiFME/fT92G9Gs
        4QIDAQAB
        -----END PUBLIC KEY-----
        """

    static let ecPrivate = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTzhDS1uE1sWM4405
        sO78hdTZPvk2HpbJjT/AW3e7jQmhRANCAASpdZ6eBo7N7Y6NKOwlgriOOgUdAVa8
        gvNVfP5mMi7eSqpPR9XQlpg4dFvwGykc5ulL4E3seCPGZSJsx4bki3eQ
        -----END PRIVATE KEY-----
        """

    static let ecPublic = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqXWengaOze2OjSjsJYK4jjoFHQFW
        vILzVXz+ZjIu3kqqT0fV0JaYOHRb8BspHObpS+BN7HgjxmUibMeG5It3kA==
        -----END PUBLIC KEY-----
        """

    static let ec2Private = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg3V3tLlVKfxn/XWRd
        8m+xIEMR5onxqcKLttQMuMRNDdyhRANCAATVF2ivh6wVrsaK8oiA/L687GQOYBfN
        vcAk1NF3C4tpwjzEGF69oMg/rvm1+/EvJWmWUzIcqVuPxyBx2QVpQCEd
        -----END PRIVATE KEY-----
        """

    static let ec2Public = """
        -----BEGIN PUBLIC KEY-----
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE1Rdor4esFa7GivKIgPy+vOxkDmAX
        zb3AJNTRdwuLacI8xBhevaDIP675tfvxLyVpllMyHKlbj8cgcdkFaUAhHQ==
        -----END PUBLIC KEY-----
        """

    static let rsa1024Public = """
        -----BEGIN PUBLIC KEY-----
        MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC/Pa0ZSslcf2ra3bcd+WtoCnZs
        UetDn/QHs3XDtsh4OLt2tdrjZr6t8HeybKWhPF/KxVJQEoO5ponGbQ3X7K2IxBhW
        3AEYOLH2WaaDMoqVIZ0Dmn89CnOo83gv2oc6B+hoyunoYGr2NVeVbuS+2GIlMvIl
        kiXicV3AAOVdLeU65QIDAQAB
        -----END PUBLIC KEY-----
        """

    static let p384Public = """
        -----BEGIN PUBLIC KEY-----
        MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEpcaNz0d79+vX7lFXJ1cM2AGy7IOVHPlM
        WKv0FGOpZ5EB2YB3mV5HfX97eGLChqWncXSA41JPX4+I4yVJ6ndpd/LAw7iBm9fb
        gUaXmQSHNEoqWGmhXllNUAEkL3W/CB1a
        -----END PUBLIC KEY-----
        """

    static let p384Private = """
        -----BEGIN PRIVATE KEY-----
        MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDAiR180rnckdsjQCbP2
        khNOcXNe+n3MZSPzJvB2QlFo3vadVx2UfYDIuy2T3NOuJnOhZANiAASlxo3PR3v3
        69fuUVcnVwzYAbLsg5Uc+UxYq/QUY6lnkQHZgHeZXkd9f3t4YsKGpadxdIDjUk9f
        j4jjJUnqd2l38sDDuIGb19uBRpeZBIc0SipYaaFeWU1QASQvdb8IHVo=
        -----END PRIVATE KEY-----
        """

    static let rsaN =
        "0MjGEPh3JgHL_akVfO5D73kQIMbpb_8z8E-BtqQnRy2mAH5ltk-px2ivrTGDmq3DegSGzcnaaRovtOXbQNI1RS34d1BKn5WGl5L9HTnxHXHWiZ2S22JdXEXmoZVYKzb0C5ysbUHk3k6kJLaIoXYQCY1qtqaPRThe8-Ok09DVhCj8-xmF1YvnMIM3j_Y_v1lMKtYN2fd-rLRd8sfJh3AWdXTXZu7DHCOtJy4GNf7dnhRssC-oOdU9OtqZ7LhDtrScwrHwxSOZnTg2FraUL42ZIl5uQ0s7Noa0kg8Nf-EyW8lkLMccpkLFus9OOrdHZ54DWtsZInGiFME_fT92G9Gs4Q"
    static let rsaE = "AQAB"
    static let ecX = "qXWengaOze2OjSjsJYK4jjoFHQFWvILzVXz-ZjIu3ko"
    static let ecY = "qk9H1dCWmDh0W_AbKRzm6UvgTex4I8ZlImzHhuSLd5A"

    /// 2048-bit RSA public keys with unsafe public exponents (e = 1 makes every signature verify
    /// as its own message representative: anyone could sign).
    static let rsaExponent1Public = """
        -----BEGIN PUBLIC KEY-----
        MIIBIDANBgkqhkiG9w0BAQEFAAOCAQ0AMIIBCAKCAQEAwgm4dc17IOLMiylXwq+F
        /25orQyBa2qDPR3fDr/evzR7tgJ0ygVNnmsG/6tIKOxxb7s7U1DhJWNw0Dg1W4JS
        O4pPZR/7q8DUC1kRdzuBNEvcG641JQCAalygfRAwqAfrzoztf0HIoVJMdD40XbRc
        zDH1WdV6KKJbVCDA+hx5uTlHuzV12T70gpDmpG4gZ/OSRPJfK9xdk7mCyIcSLxy/
        MYrPtdtbN4yPDG+d6Zh6Zb36sl8UeGECJRk0fNQeMkUB6eO5MKg5FTLFVTe2PjX7
        sZZBDGEx5OuOnW9aAan2fK9YZBkUPxUGxaNLI1eJEVnygrN9lvKNARDOz6NS67G5
        OwIBAQ==
        -----END PUBLIC KEY-----
        """
    static let rsaExponent3Public = """
        -----BEGIN PUBLIC KEY-----
        MIIBIDANBgkqhkiG9w0BAQEFAAOCAQ0AMIIBCAKCAQEAwgm4dc17IOLMiylXwq+F
        /25orQyBa2qDPR3fDr/evzR7tgJ0ygVNnmsG/6tIKOxxb7s7U1DhJWNw0Dg1W4JS
        O4pPZR/7q8DUC1kRdzuBNEvcG641JQCAalygfRAwqAfrzoztf0HIoVJMdD40XbRc
        zDH1WdV6KKJbVCDA+hx5uTlHuzV12T70gpDmpG4gZ/OSRPJfK9xdk7mCyIcSLxy/
        MYrPtdtbN4yPDG+d6Zh6Zb36sl8UeGECJRk0fNQeMkUB6eO5MKg5FTLFVTe2PjX7
        sZZBDGEx5OuOnW9aAan2fK9YZBkUPxUGxaNLI1eJEVnygrN9lvKNARDOz6NS67G5
        OwIBAw==
        -----END PUBLIC KEY-----
        """
    static let rsaEvenExponentPublic = """
        -----BEGIN PUBLIC KEY-----
        MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwgm4dc17IOLMiylXwq+F
        /25orQyBa2qDPR3fDr/evzR7tgJ0ygVNnmsG/6tIKOxxb7s7U1DhJWNw0Dg1W4JS
        O4pPZR/7q8DUC1kRdzuBNEvcG641JQCAalygfRAwqAfrzoztf0HIoVJMdD40XbRc
        zDH1WdV6KKJbVCDA+hx5uTlHuzV12T70gpDmpG4gZ/OSRPJfK9xdk7mCyIcSLxy/
        MYrPtdtbN4yPDG+d6Zh6Zb36sl8UeGECJRk0fNQeMkUB6eO5MKg5FTLFVTe2PjX7
        sZZBDGEx5OuOnW9aAan2fK9YZBkUPxUGxaNLI1eJEVnygrN9lvKNARDOz6NS67G5
        OwIDAQAA
        -----END PUBLIC KEY-----
        """
}
