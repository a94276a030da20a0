"""The SDK: talks to a Shipyard server over HTTP; never imports the server's code."""
