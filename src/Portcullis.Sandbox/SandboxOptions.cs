using System.Net;
using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Sandbox;

/// <summary>How to start a <see cref="SandboxServer"/>.</summary>
public sealed record SandboxOptions
{
    /// <summary>Where to listen; port 0 picks a free port (read it back from <see cref="SandboxServer.Port"/>).</summary>
    public IPEndPoint ListenAddress { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>The TLS server certificate, with its private key.</summary>
    public required X509Certificate2 ServerCertificate { get; init; }

    /// <summary>The CAs client certificates must chain to. Every connection must present such a certificate.</summary>
    public required X509Certificate2Collection ClientCA { get; init; }

    /// <summary>Create the demo namespaces and objects at start (see <see cref="SandboxServer.SeedDefaults"/>).</summary>
    public bool Seed { get; init; }

    /// <summary>The interval between lines of <c>pods/log?follow=true</c>.</summary>
    public TimeSpan LogFollowInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How many requests <c>/sandbox/requests</c> remembers.</summary>
    public int RequestLogCapacity { get; init; } = 1000;

    /// <summary>
    /// Webhook mode: authenticate and authorize every request as kube-apiserver does (see <see cref="Security.SandboxSecurityOptions"/>).
    /// Null (the default): believe whatever identity a request carries, authorize nothing.
    /// </summary>
    public Security.SandboxSecurityOptions? Security { get; init; }

    /// <summary>The clock for timestamps and log follow; tests may inject one.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
