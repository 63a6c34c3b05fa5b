using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Portcullis.Gateway.Diagnostics;

/// <summary>
/// Keeps every console log line one line: an exception handed to a logger (YARP's and Kestrel's own categories log the
/// exceptions of client aborts, such as a reset exec stream) is written as its type and message at the end of the line,
/// never as a stack trace. The gateway's own events pass no exception; this covers the framework's.
/// </summary>
internal sealed class OneLineExceptionLoggerProvider(ILoggerProvider inner) : ILoggerProvider, ISupportExternalScope
{
    /// <summary>The longest exception message kept on the line.</summary>
    internal const int MaxMessageLength = 300;

    /// <summary>Wraps the console provider that <paramref name="logging"/> has registered, if any.</summary>
    public static void WrapConsole(ILoggingBuilder logging)
    {
        var services = logging.Services;
        for (var i = 0; i < services.Count; i++)
        {
            var d = services[i];
            if (d.ServiceType == typeof(ILoggerProvider) && d.ImplementationType == typeof(ConsoleLoggerProvider))
            {
                services[i] = ServiceDescriptor.Singleton<ILoggerProvider>(sp => new OneLineExceptionLoggerProvider(
                    new ConsoleLoggerProvider(sp.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>(), sp.GetServices<ConsoleFormatter>())));
            }
        }
    }

    /// <summary><c>IOException: Connection reset by peer</c>: the innermost exception's type and first line, bounded.</summary>
    public static string Summary(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var e = exception.GetBaseException();
        var message = e.Message.ReplaceLineEndings(" ").Trim();
        if (message.Length > MaxMessageLength)
        {
            message = message[..MaxMessageLength] + "…";
        }
        return $"{e.GetType().Name}: {message}";
    }

    public ILogger CreateLogger(string categoryName) => new OneLineLogger(inner.CreateLogger(categoryName));

    public void SetScopeProvider(IExternalScopeProvider scopeProvider)
    {
        if (inner is ISupportExternalScope scoped)
        {
            scoped.SetScopeProvider(scopeProvider);
        }
    }

    public void Dispose() => inner.Dispose();

    private sealed class OneLineLogger(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (exception is null)
            {
                inner.Log(logLevel, eventId, state, null, formatter);
                return;
            }
            var summary = Summary(exception);
            inner.Log(logLevel, eventId, state, null, (s, _) => $"{formatter(s, exception)} ({summary})");
        }
    }
}
