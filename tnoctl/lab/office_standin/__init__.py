"""Source of the lab stand-in for coolwsd (NOT Collabora Online) and its Debian package build.

Files: coolwsd.py (the daemon, installed as /usr/bin/coolwsd), coolwsd.service, coolwsd.xml (the
default conffile), debian/ (control template, conffiles, maintainer scripts), README.md.
build.py turns them into coolwsd_<version>_all.deb files with dpkg-deb.
"""
