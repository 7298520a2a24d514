"""`bucketwarden local`: a small copy of the deployed system on an embedded AWS emulator."""
