"""Jobs: durable, checkpointed work on servers and hosts (provisioning,
upgrades, suspensions), with every Ansible task's outcome kept as an event."""
