using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Portcullis.Gateway.Diagnostics;

/// <summary>
/// The logger factory handed to the first configuration load, before the host's own factory exists (its console
/// format is read from that very configuration). Loggers made from it write to nothing until <see cref="Bind"/>, then
/// to the bound factory; a component that fails in that instant (an OIDC issuer refusing the first key fetch) logs
/// again at its next retry. The host unbinds it before disposing its factory, so a reload still running then logs to
/// nothing instead of failing.
/// </summary>
internal sealed class LateLoggerFactory : ILoggerFactory
{
    private ILoggerFactory _target = NullLoggerFactory.Instance;

    public void Bind(ILoggerFactory target) => Volatile.Write(ref _target, target);

    public ILogger CreateLogger(string categoryName) => new LateLogger(this, categoryName);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException("bind a configured factory instead");

    public void Dispose()
    {
        // The bound factory belongs to the host.
    }

    private sealed class LateLogger(LateLoggerFactory owner, string category) : ILogger
    {
        private ILoggerFactory? _boundTo;
        private ILogger _inner = NullLogger.Instance;

        private ILogger Inner
        {
            get
            {
                var target = Volatile.Read(ref owner._target);
                if (!ReferenceEquals(target, _boundTo))
                {
                    try
                    {
                        _inner = target.CreateLogger(category);
                    }
                    catch (ObjectDisposedException)
                    {
                        _inner = NullLogger.Instance; // the host is shutting down
                    }
                    _boundTo = target;
                }
                return _inner;
            }
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => Inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => Inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Inner.Log(logLevel, eventId, state, exception, formatter);
    }
}
