using Microsoft.AspNetCore.Http;

namespace Portcullis.Gateway.Admission;

/// <summary>
/// L5: API Priority and Fairness before authorization and EventRateLimit/limits after it. The stage is wired in the
/// request path; its limits arrive with the admission issue, so today every request passes.
/// </summary>
internal sealed class AdmissionMiddleware(RequestDelegate next)
{
    public Task InvokeAsync(HttpContext context) => next(context);
}
