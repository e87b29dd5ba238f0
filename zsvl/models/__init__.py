"""zsvl.models"""
