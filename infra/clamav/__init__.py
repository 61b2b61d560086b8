"""Virus scanning with ClamAV's ``clamd`` over TCP (the INSTREAM command)."""
