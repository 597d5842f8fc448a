"""Packaging for sipcli: the middleware library and the `sipcli` command."""

from pathlib import Path

from setuptools import setup

setup(
    name="sipcli",
    version="0.1.0",
    description="A scriptable SIP SIMPLE client: middleware library and the sipcli command",
    long_description=Path("README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    python_requires=">=3.11,<3.13",
    packages=["sipcli", "sipcli.configuration", "sipcli.msrp", "sipcli.commands"],
    package_dir={"sipcli.commands": "commands"},
    install_requires=[
        "click>=8.1",
        "tabulate>=0.9",
        "pjsua2-python==2.15.1.post1; platform_system == 'Linux' and platform_machine == 'x86_64'",
        "dnspython>=2.4",
        "zeroconf>=0.130",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.2", "pexpect>=4.8", "hypothesis>=6.100", "ruff>=0.5"],
    },
    entry_points={"console_scripts": ["sipcli = sipcli.commands:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Operating System :: POSIX :: Linux",
        "Topic :: Communications :: Telephony",
    ],
)
