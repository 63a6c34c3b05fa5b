global using Portcullis.Authentication.Tests.Support;
