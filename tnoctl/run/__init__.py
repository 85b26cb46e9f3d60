"""Execution adapters: ansible.py runs playbooks (ansible-runner), ssh.py runs commands over SSH."""
