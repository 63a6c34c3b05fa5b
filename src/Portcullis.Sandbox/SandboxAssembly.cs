namespace Portcullis.Sandbox;

/// <summary>Marker for the sandbox assembly.</summary>
public static class SandboxAssembly;
