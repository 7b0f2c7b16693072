"""The bench harness: our hot paths measured beside bare ceilings in one run.

Run it with `scripts/bench`. A scenario (`scenario.Scenario`) names the ceiling it is
compared with and sets itself up through an `environment.Environment`; add new ones in
`registry.all_scenarios`.
"""
