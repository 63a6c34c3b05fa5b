using Microsoft.AspNetCore.Http;

namespace Portcullis.Gateway.Admission;

/// <summary>
/// L5 after authorization: where EventRateLimit and request rate limits will run (not built yet: every request passes).
/// API Priority and Fairness runs before authorization, in <see cref="PriorityAndFairnessMiddleware"/>.
/// </summary>
internal sealed class AdmissionMiddleware(RequestDelegate next)
{
    public Task InvokeAsync(HttpContext context) => next(context);
}
