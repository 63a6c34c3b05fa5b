namespace Portcullis.Gateway;

/// <summary>Marker for the gateway assembly.</summary>
public static class GatewayAssembly;
