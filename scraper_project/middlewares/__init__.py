"""Downloader middlewares of the page checker."""
