using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;

namespace Portcullis.Gateway.Tests.Infrastructure;

/// <summary>
/// A TLS listener on loopback for the raw-bytes upstream stand-ins: accepts connections, authenticates as the
/// upstream's server certificate, checks a client certificate against the test CA, and hands each connection to
/// <see cref="ServeAsync"/> until the test disposes it.
/// </summary>
public abstract class TlsTestServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly X509Certificate2 _serverCertificate;
    private readonly X509Certificate2 _clientCA;
    private readonly bool _clientCertificateRequired;
    private readonly List<Task> _connections = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, Socket> _sockets = new();
    private Task _accepting = Task.CompletedTask;
    private int _connectionCount;

    /// <param name="clientCertificateRequired">As kube-apiserver with the gateway's certificate; false lets a
    /// Passthrough gateway connect without one (one that comes must still be of the test CA).</param>
    protected TlsTestServer(X509Certificate2 serverCertificate, X509Certificate2 clientCA, bool clientCertificateRequired, IPAddress? address)
    {
        _serverCertificate = serverCertificate;
        _clientCA = clientCA;
        _clientCertificateRequired = clientCertificateRequired;
        _listener = new TcpListener(address ?? IPAddress.Loopback, 0);
        _listener.Start();
        Uri = new UriBuilder("https", (address ?? IPAddress.Loopback).ToString(), ((IPEndPoint)_listener.LocalEndpoint).Port).Uri;
    }

    public Uri Uri { get; }

    /// <summary>How many TLS connections the gateway opened.</summary>
    public int Connections => Volatile.Read(ref _connectionCount);

    protected CancellationTokenSource Stop { get; } = new();

    /// <summary>Starts accepting; called by the derived constructor once its own state is ready.</summary>
    protected void BeginAccepting() => _accepting = AcceptAsync();

    /// <summary>Serves one authenticated connection; returns when it ends.</summary>
    protected abstract Task ServeAsync(SslStream tls, int connection);

    private async Task AcceptAsync()
    {
        while (!Stop.IsCancellationRequested)
        {
            TcpClient tcp;
            try
            {
                tcp = await _listener.AcceptTcpClientAsync(Stop.Token);
            }
            catch (Exception) when (Stop.IsCancellationRequested)
            {
                return;
            }
            var id = Interlocked.Increment(ref _connectionCount);
            lock (_connections)
            {
                _connections.Add(RunAsync(tcp, id));
            }
        }
    }

    private async Task RunAsync(TcpClient tcp, int id)
    {
        using var _ = tcp;
        _sockets[id] = tcp.Client;
        try
        {
            await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = _serverCertificate,
                ClientCertificateRequired = _clientCertificateRequired,
                RemoteCertificateValidationCallback = (_, cert, _, _) => cert is null ? !_clientCertificateRequired : ValidateClient(cert),
                ApplicationProtocols = [SslApplicationProtocol.Http11],
            }, Stop.Token);
            await ServeAsync(tls, id);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or System.Security.Authentication.AuthenticationException or ObjectDisposedException or SocketException or FormatException)
        {
            // the gateway closed the connection, or the test ended
        }
        finally
        {
            _sockets.TryRemove(id, out var _);
        }
    }

    /// <summary>Resets connection <paramref name="connection"/>: a TCP RST, no TLS close (a peer that died mid-way).</summary>
    protected void Reset(int connection)
    {
        if (_sockets.TryRemove(connection, out var socket))
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
    }

    private bool ValidateClient(X509Certificate cert)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_clientCA);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(cert);
        return chain.Build(leaf);
    }

    public async ValueTask DisposeAsync()
    {
        await Stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] open;
        lock (_connections)
        {
            open = [.. _connections];
        }
        await Task.WhenAll(open).WaitAsync(TimeSpan.FromSeconds(10));
        Stop.Dispose();
        GC.SuppressFinalize(this);
    }
}
