"""Test support: free ports and launchers for the real SIP peers the tests start on loopback."""
